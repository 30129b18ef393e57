import type { Identity } from "../core/identity.js";

/**
 * Verified tokens by their exact text. A long-polling client presents the same token on
 * every poll; checking its HMAC each time was a third of the server's CPU. The same
 * string always verifies the same way, so only expiry needs re-checking on a hit.
 * Bounded: the oldest entries go first (Map keeps insertion order).
 */
export class TokenCache {
  private readonly entries = new Map<string, Identity>();

  constructor(private readonly maxEntries = 10_000) {}

  get(token: string, now = Date.now()): Identity | undefined {
    const hit = this.entries.get(token);
    if (hit === undefined) return undefined;
    if (hit.expiresAt !== null && hit.expiresAt <= now) {
      this.entries.delete(token);
      return undefined;
    }
    return hit;
  }

  set(token: string, identity: Identity): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, identity);
  }
}
