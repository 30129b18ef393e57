/**
 * Latency histogram mergeable across processes: 10 µs buckets up to 100 ms, then 1 ms
 * buckets up to 100 s. Sent between processes as sparse [bucket, count] pairs.
 */
const FINE = 10_000; // 0 – 100 ms by 10 µs
const COARSE = 100_000; // 100 ms – 100.1 s by 1 ms

export class Histogram {
  readonly counts = new Uint32Array(FINE + COARSE);
  total = 0;

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    const i = v < 100 ? Math.floor(v * 100) : Math.min(FINE + Math.floor(v - 100), FINE + COARSE - 1);
    this.counts[i]!++;
    this.total++;
  }

  toSparse(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) out.push([i, this.counts[i]!]);
    return out;
  }

  addSparse(pairs: ReadonlyArray<[number, number]>): void {
    for (const [i, n] of pairs) {
      this.counts[i]! += n;
      this.total += n;
    }
  }

  /** The upper edge of the bucket holding quantile q (0..1), in ms; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i < FINE ? (i + 1) / 100 : 100 + (i - FINE + 1);
    }
    return NaN;
  }
}
