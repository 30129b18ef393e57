import type { ClaimPolicy } from "../store.js";

interface Claim {
  readonly owner: string;
  expiresAt: number;
}

/**
 * The reference of ownership claims for one database: first owner wins while its claim
 * lives, each claim by the owner renews it, and an owner holds at most `maxPerOwner`.
 */
export class MemoryOwners {
  private readonly claims = new Map<string, Claim>();
  /** Each owner's keys, least recently renewed first (Map keeps insertion order). */
  private readonly byOwner = new Map<string, Map<string, true>>();

  claim(key: string, owner: string, { now, ttlMs, maxPerOwner }: ClaimPolicy): string {
    const current = this.claims.get(key);
    if (current !== undefined && current.expiresAt > now) {
      if (current.owner !== owner) return current.owner;
      current.expiresAt = now + ttlMs;
      this.touch(owner, key);
      return owner;
    }
    if (current !== undefined) this.delete(key, current.owner);
    this.claims.set(key, { owner, expiresAt: now + ttlMs });
    this.touch(owner, key);
    const keys = this.byOwner.get(owner)!;
    for (const k of [...keys.keys()]) if (this.claims.get(k)!.expiresAt <= now) this.delete(k, owner);
    for (const k of keys.keys()) {
      if (keys.size <= maxPerOwner) break;
      this.delete(k, owner);
    }
    return owner;
  }

  trim(now: number): number {
    let removed = 0;
    for (const [key, c] of [...this.claims]) {
      if (c.expiresAt > now) continue;
      this.delete(key, c.owner);
      removed++;
    }
    return removed;
  }

  private touch(owner: string, key: string): void {
    let keys = this.byOwner.get(owner);
    if (keys === undefined) this.byOwner.set(owner, (keys = new Map()));
    keys.delete(key);
    keys.set(key, true);
  }

  private delete(key: string, owner: string): void {
    this.claims.delete(key);
    const keys = this.byOwner.get(owner);
    keys?.delete(key);
    if (keys?.size === 0) this.byOwner.delete(owner);
  }
}
