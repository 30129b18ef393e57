import { readToken, type TokenFacts } from "./jwt.js";

export type TokenSource = string | (() => string | Promise<string>);

/**
 * Holds the current token: asks `getToken` again before the token expires (so a page open
 * for a day keeps receiving) and whenever the server refused it. A fixed string is simply
 * kept. Concurrent refreshes share one call.
 */
export class TokenKeeper {
  private token: string | null = null;
  private facts: TokenFacts = { user: null, expiresAt: null };
  private inflight: Promise<string> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly source: TokenSource,
    /** Called with each token obtained by a scheduled refresh, to hand it to the live connection. */
    private readonly onRefresh: (token: string) => void,
    private readonly onError: (error: Error) => void,
  ) {
    if (typeof source === "string") this.adopt(source, false);
  }

  get canRefresh(): boolean {
    return typeof this.source === "function";
  }

  get user(): string | null {
    return this.facts.user;
  }

  get expiresAt(): number | null {
    return this.facts.expiresAt;
  }

  /** The token to use now: the current one, or a fresh one when there is none or it has expired. */
  async current(): Promise<string> {
    if (this.token !== null && (this.facts.expiresAt === null || this.facts.expiresAt > Date.now() + 1000 || !this.canRefresh)) {
      return this.token;
    }
    return this.refresh();
  }

  /** Asks `getToken` for a new token (a fixed token is returned as it is). */
  refresh(): Promise<string> {
    if (typeof this.source === "string") return Promise.resolve(this.source);
    const get = this.source;
    this.inflight ??= (async () => {
      try {
        const t = await get();
        if (typeof t !== "string" || t.length === 0) throw new Error("getToken returned no token.");
        this.adopt(t, true);
        return t;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  private adopt(token: string, schedule: boolean): void {
    this.token = token;
    this.facts = readToken(token);
    if (schedule) this.schedule();
  }

  /** Refreshes when about a fifth of the token's remaining life is left (at most a minute before). */
  private schedule(): void {
    clearTimeout(this.timer);
    const exp = this.facts.expiresAt;
    if (exp === null || this.stopped || !this.canRefresh) return;
    const left = exp - Date.now();
    const delay = Math.max(500, left - Math.min(60_000, left / 5));
    this.timer = setTimeout(() => {
      this.refresh().then(
        (t) => this.onRefresh(t),
        (e: unknown) => this.onError(asError(e, "getToken failed")),
      );
    }, delay);
    // A live connection or a reconnect wait keeps a process alive, not this timer.
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

export function asError(e: unknown, fallback = "failed"): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === "string" ? e : fallback);
}
