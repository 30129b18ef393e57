/**
 * Bytes held in this process on behalf of each user (per database), against a cap: answers
 * written and not yet handed to the kernel, or request bodies being received. A user's
 * many connections add up, so opening more sockets does not buy more memory.
 */
export class UserBytes {
  private sum = 0;
  private readonly byKey = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Bytes held for every user. */
  get total(): number {
    return this.sum;
  }

  of(key: string): number {
    return this.byKey.get(key) ?? 0;
  }

  /** Whether `n` more bytes for `key` would pass the cap (never when it holds nothing yet). */
  wouldExceed(key: string, n: number): boolean {
    const mine = this.of(key);
    return mine > 0 && mine + n > this.max;
  }

  add(key: string, n: number): void {
    this.sum += n;
    this.byKey.set(key, this.of(key) + n);
  }

  release(key: string, n: number): void {
    this.sum -= n;
    const left = this.of(key) - n;
    if (left <= 0) this.byKey.delete(key);
    else this.byKey.set(key, left);
  }
}
