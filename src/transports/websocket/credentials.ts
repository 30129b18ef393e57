import type { Identity } from "../../core/identity.js";
import { CLOSE, type CloseReason } from "./close-codes.js";

/** Only this tail of a token is kept, to recognise a repeated auth_jwt without verifying it again. */
const TOKEN_TAG_LENGTH = 12;

/**
 * Who a connection speaks for, and until when: the identity its credentials gave, and the
 * end of the token it came from (part of its signature), so that a repeated auth_jwt is
 * not verified again. A different token with the same tail would keep the identity as it
 * is, which grants nothing.
 */
export class ConnectionCredentials {
  private tokenTag: string | null;

  constructor(
    public identity: Identity | null,
    token: string | null,
    private readonly openedAt: number,
  ) {
    this.tokenTag = tag(token);
  }

  /** Whether `token` is the one the current identity came from. */
  isCurrent(token: string): boolean {
    return this.identity !== null && tag(token) === this.tokenTag;
  }

  replace(identity: Identity, token: string | null): void {
    this.identity = identity;
    this.tokenTag = tag(token);
  }

  /**
   * Why the connection must close at `now`, if it must: its credentials expired, or it
   * opened without any and did not authenticate within `authTimeoutMs` (an anonymous
   * socket costs a descriptor and buffers; it may only ping).
   */
  expiry(now: number, authTimeoutMs: number): CloseReason | null {
    if (this.identity === null) return now - this.openedAt >= authTimeoutMs ? CLOSE.AUTH_TIMEOUT : null;
    const at = this.identity.expiresAt;
    return at !== null && at <= now ? CLOSE.AUTH_EXPIRED : null;
  }
}

/** A short copy of a token's end (short slices are copied, so the request URL is not kept alive). */
function tag(token: string | null): string | null {
  return token === null ? null : token.slice(-TOKEN_TAG_LENGTH);
}
