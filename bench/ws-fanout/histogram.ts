/** Latency histogram: 10 µs buckets below 200 ms, 1 ms buckets above (up to 60 s). Mergeable. */
export class Histogram {
  private readonly fine = new Uint32Array(20_000);
  private readonly coarse = new Uint32Array(60_000);
  count = 0;

  record(ms: number): void {
    if (!(ms >= 0)) ms = 0;
    if (ms < 200) this.fine[Math.floor(ms * 100)]!++;
    else this.coarse[Math.min(59_999, Math.floor(ms))]!++;
    this.count++;
  }

  toJSON(): { fine: Array<[number, number]>; coarse: Array<[number, number]> } {
    const sparse = (a: Uint32Array): Array<[number, number]> => {
      const out: Array<[number, number]> = [];
      for (let i = 0; i < a.length; i++) if (a[i]! > 0) out.push([i, a[i]!]);
      return out;
    };
    return { fine: sparse(this.fine), coarse: sparse(this.coarse) };
  }

  merge(json: ReturnType<Histogram["toJSON"]>): void {
    for (const [i, n] of json.fine) {
      this.fine[i]! += n;
      this.count += n;
    }
    for (const [i, n] of json.coarse) {
      this.coarse[i]! += n;
      this.count += n;
    }
  }

  /** The value (ms) below which a fraction `q` of samples fall. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const target = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i]!;
      if (seen >= target) return (i + 1) / 100;
    }
    for (let i = 0; i < this.coarse.length; i++) {
      seen += this.coarse[i]!;
      if (seen >= target) return i + 1;
    }
    return Infinity;
  }
}
