import { TidingsError } from "../../errors.js";

/** Keys with no parked poll are kept (re-polling clients come back at once) up to this many. */
const MAX_IDLE_KEYS = 10_000;

/** Caps parked polls in total and per user, so that one client cannot hold every socket. */
export class PollLimiter {
  private total = 0;
  private readonly perKey = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerKey: number,
  ) {}

  /** Takes a slot or throws 429; the returned function gives it back (safe to call twice). */
  acquire(key: string): () => void {
    this.take(key);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(key);
    };
  }

  /** Takes a slot or throws 429; the caller gives it back exactly once with `give`. */
  take(key: string): void {
    const mine = this.perKey.get(key) ?? 0;
    if (this.total >= this.maxTotal) {
      throw new TidingsError("TIDINGS_ERR_LIMIT_POLLS", "The server has too many parked polls; retry shortly.");
    }
    if (mine >= this.maxPerKey) {
      throw new TidingsError("TIDINGS_ERR_LIMIT_POLLS", `At most ${this.maxPerKey} parked polls per user.`);
    }
    if (mine === 0 && this.perKey.size >= MAX_IDLE_KEYS) this.sweep();
    this.total++;
    this.perKey.set(key, mine + 1);
  }

  give(key: string): void {
    this.total--;
    // A zero stays: deleting and re-adding the key on every poll reallocated the table.
    this.perKey.set(key, Math.max(0, (this.perKey.get(key) ?? 1) - 1));
  }

  private sweep(): void {
    for (const [key, n] of this.perKey) if (n === 0) this.perKey.delete(key);
  }
}
