import { TidingsError } from "../../errors.js";

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
    const mine = this.perKey.get(key) ?? 0;
    if (this.total >= this.maxTotal) {
      throw new TidingsError("TIDINGS_ERR_LIMIT_POLLS", "The server has too many parked polls; retry shortly.");
    }
    if (mine >= this.maxPerKey) {
      throw new TidingsError("TIDINGS_ERR_LIMIT_POLLS", `At most ${this.maxPerKey} parked polls per user.`);
    }
    this.total++;
    this.perKey.set(key, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.perKey.get(key) ?? 1) - 1;
      if (n <= 0) this.perKey.delete(key);
      else this.perKey.set(key, n);
    };
  }
}
