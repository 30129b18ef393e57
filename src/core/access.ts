import type { ClaimPolicy, Store } from "../stores/store.js";
import type { Identity } from "./identity.js";
import { matchesPattern } from "./channels.js";
import { TidingsError } from "../errors.js";

/** A configured read rule: callers (all, or those listed) may read channels matching `channels`. */
export interface AccessRule {
  /** Channel pattern; `*` is a wildcard and `{user}` the caller's id, e.g. `chat:{user}:*`. */
  readonly channels: string;
  /** Restrict the rule to these user ids; absent means every authenticated user of the database. */
  readonly users?: readonly string[];
  /** Restrict the rule to these databases; absent means every database. */
  readonly databases?: readonly string[];
}

/** How `client:<id>` claims live: `clientClaimTtlMs` and `maxClientClaimsPerUser`. */
export interface ClaimLimits {
  readonly ttlMs: number;
  readonly maxPerUser: number;
}

/** An owner as this process last learnt it from the store, trusted until `checkAt`. */
interface KnownOwner {
  readonly owner: string;
  readonly checkAt: number;
  /**
   * Whether the owner itself asked (the store renewed its claim then). Only then may the
   * owner be let in without the store: another user's asking renews nothing, and trusting
   * it could let the owner read past the claim's end.
   */
  readonly renewed: boolean;
}

/**
 * Deny by default. `user:<id>` and `notification:<id>` are the caller's own; `client:<id>`
 * belongs to the first user who uses it, until that user has not used it for the claim's
 * lifetime; anything else needs a configured rule or a pattern in the caller's token.
 * Built-in ownership wins over every pattern and rule (`*` included): only admins read
 * another user's built-in channels.
 */
export class AccessControl {
  /**
   * Owners learnt from the store. A claim is renewed in the store only when its owner asks
   * after `checkAt`, so a cached owner is re-asked well within the claim's lifetime (a
   * quarter of it, at most 10 minutes): the claim of a client that keeps using its channel
   * never lapses, and a claim freed by the cap is noticed within minutes.
   */
  private readonly owners = new Map<string, KnownOwner>();
  private readonly decisions = new WeakMap<Identity, Map<string, boolean>>();
  /** How long a learnt owner is trusted before the store is asked (and the claim renewed). */
  readonly recheckMs: number;

  constructor(
    private readonly store: Store,
    private readonly rules: readonly AccessRule[],
    private readonly claims: ClaimLimits,
  ) {
    this.recheckMs = Math.max(1, Math.min(Math.floor(claims.ttlMs / 4), 600_000));
  }

  async canRead(db: string, who: Identity, channel: string): Promise<boolean> {
    const decided = this.decide(db, who, channel);
    if (decided !== "owner") return decided;
    // Owned by someone else: no pattern or rule can open it.
    return (await this.ownerOf(db, channel, who.user)) === who.user;
  }

  /**
   * True when every channel is readable without a store round trip (the common case of a
   * client re-polling): lets the long-poll path skip the async checks. False means "ask
   * assertCanRead", not "denied".
   */
  allReadableNow(db: string, who: Identity, channels: readonly string[]): boolean {
    for (const channel of channels) {
      const decided = this.decide(db, who, channel);
      if (decided === true) continue;
      if (decided === "owner") {
        const known = this.owners.get(`${db}\u0000${channel}`);
        if (known !== undefined && known.owner === who.user && known.renewed && known.checkAt > Date.now()) continue;
      }
      return false;
    }
    return true;
  }

  /**
   * Until when a passed check of these channels holds for this caller: for ever, or until
   * the claims of its `client:` channels are due for renewal.
   */
  recheckAt(db: string, who: Identity, channels: readonly string[]): number {
    for (const c of channels) if (this.isClaimed(db, who, c)) return Date.now() + this.recheckMs;
    return Number.POSITIVE_INFINITY;
  }

  /** The decision that needs no store: a boolean, or "owner" when a client channel's owner decides. */
  private decide(db: string, who: Identity, channel: string): boolean | "owner" {
    if (who.role === "admin") return true;
    const colon = channel.indexOf(":");
    if (colon > 0) {
      const kind = channel.slice(0, colon);
      const rest = channel.slice(colon + 1);
      // Command channels are never granted by channel patterns or rules: only the clients
      // allowed to serve the address are woken on it, only publishers follow outcomes.
      if (kind === "command") return this.canServeAddress(who, rest);
      if (kind === "command-outcome") return who.role === "publisher";
      // Owned channels are decided by their owner alone, never by patterns or rules.
      if (kind === "user" || kind === "notification") return rest === who.user;
      if (kind === "client") return rest.length > 0 ? "owner" : false;
    }
    return this.grantedByPattern(db, who, channel);
  }

  /** Throws TIDINGS_ERR_CHANNEL_FORBIDDEN naming the first channel the caller may not read. */
  async assertCanRead(db: string, who: Identity, channels: readonly string[]): Promise<void> {
    for (const channel of channels) {
      if (!(await this.canRead(db, who, channel))) {
        throw new TidingsError("TIDINGS_ERR_CHANNEL_FORBIDDEN", `Not allowed to read channel ${JSON.stringify(channel)}.`, {
          details: { channel },
        });
      }
    }
  }

  /** Whether `who` may register as the command address (token `addresses` patterns, or admin). */
  canServeAddress(who: Identity, address: string): boolean {
    if (who.role === "admin") return true;
    for (const p of who.addresses) if (matchesPattern(p, address, who.user)) return true;
    return false;
  }

  private grantedByPattern(db: string, who: Identity, channel: string): boolean {
    // Pattern decisions depend only on the identity, the database and the channel; identities
    // come from the token cache, so a re-polling client reuses its decisions.
    let decisions = this.decisions.get(who);
    if (decisions === undefined) {
      decisions = new Map();
      this.decisions.set(who, decisions);
    }
    const key = `${db}\u0000${channel}`;
    const known = decisions.get(key);
    if (known !== undefined) return known;
    const granted = this.matchPatterns(db, who, channel);
    if (decisions.size >= 1000) decisions.clear();
    decisions.set(key, granted);
    return granted;
  }

  private matchPatterns(db: string, who: Identity, channel: string): boolean {
    for (const p of who.channels) if (matchesPattern(p, channel, who.user)) return true;
    for (const rule of this.rules) {
      if (rule.databases && !rule.databases.includes(db)) continue;
      if (rule.users && !rule.users.includes(who.user)) continue;
      if (matchesPattern(rule.channels, channel, who.user)) return true;
    }
    return false;
  }

  /**
   * The user owning a `client:<id>` channel, claiming it for `user` if free or lapsed, and
   * renewing `user`'s own claim when the store is asked.
   */
  async ownerOf(db: string, key: string, user: string): Promise<string> {
    const cacheKey = `${db}\u0000${key}`;
    const now = Date.now();
    const known = this.owners.get(cacheKey);
    if (known !== undefined && known.checkAt > now && (known.owner !== user || known.renewed)) return known.owner;
    const policy: ClaimPolicy = { now, ttlMs: this.claims.ttlMs, maxPerOwner: this.claims.maxPerUser };
    const owner = await this.store.claimOwner(db, key, user, policy);
    if (this.owners.size > 100_000) this.owners.clear();
    this.owners.set(cacheKey, { owner, checkAt: now + this.recheckMs, renewed: owner === user });
    return owner;
  }

  /** Keeps the `client:` claims of a long-lived subscription (WebSocket, SSE) renewed while it lasts. */
  claimKeeper(db: string, who: Identity): ClaimKeeper {
    return new ClaimKeeper(this, db, who, this.claims.maxPerUser);
  }

  /** Whether a channel is one whose claim its owner renews (`client:<id>`). */
  isClaimed(db: string, who: Identity, channel: string): boolean {
    return this.decide(db, who, channel) === "owner";
  }
}

/**
 * A long-poll renews its channels' claims by polling again; a stream asks nothing once open,
 * so this renews the claims of the `client:` channels it was given, on one timer, until
 * stopped. At most `max` channels: a user holds no more claims than that anyway.
 */
export class ClaimKeeper {
  private readonly channels = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly access: AccessControl,
    readonly db: string,
    readonly who: Identity,
    private readonly max: number,
  ) {}

  add(channels: readonly string[]): void {
    for (const c of channels) {
      if (this.channels.size >= this.max) break;
      if (this.access.isClaimed(this.db, this.who, c)) this.channels.add(c);
    }
    if (this.channels.size === 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      // A failed renewal is retried at the next tick; the claim outlives several of them.
      for (const c of this.channels) this.access.ownerOf(this.db, c, this.who.user).catch(() => {});
    }, this.access.recheckMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

}
