import type { Bus } from "./bus.js";

/**
 * Messages published per second, per database, over the last few minutes: one ring of
 * per-second counts per key, each slot stamped with the second it holds so that stale
 * slots read as zero without any timer sweeping them. Fed by the Bus's
 * "message:published" event; read by the admin page on request.
 */
export class RateMeter {
  private readonly rings = new Map<string, { counts: Float64Array; stamps: Float64Array }>();

  /** @param windowSeconds how far back counts are kept (the largest `seconds` a read may ask). */
  constructor(readonly windowSeconds = 300) {
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1) throw new RangeError("windowSeconds must be a positive integer.");
  }

  /** Counts `n` events for `key` at `nowMs`. */
  record(key: string, n: number, nowMs = Date.now()): void {
    let ring = this.rings.get(key);
    if (ring === undefined) {
      // Stamps start at -1: no slot claims a second before the first record.
      ring = { counts: new Float64Array(this.windowSeconds), stamps: new Float64Array(this.windowSeconds).fill(-1) };
      this.rings.set(key, ring);
    }
    const second = Math.floor(nowMs / 1000);
    const i = second % this.windowSeconds;
    if (ring.stamps[i] !== second) {
      ring.stamps[i] = second;
      ring.counts[i] = 0;
    }
    ring.counts[i]! += n;
  }

  /** Per-second counts of the last `seconds` seconds (the current one last, partly elapsed). */
  series(key: string, seconds: number, nowMs = Date.now()): number[] {
    const span = Math.min(Math.max(0, Math.floor(seconds)), this.windowSeconds);
    const out = new Array<number>(span).fill(0);
    const ring = this.rings.get(key);
    if (ring === undefined) return out;
    const now = Math.floor(nowMs / 1000);
    for (let k = 0; k < span; k++) {
      const second = now - span + 1 + k;
      const i = second % this.windowSeconds;
      if (ring.stamps[i] === second) out[k] = ring.counts[i]!;
    }
    return out;
  }

  /** Events of the last `seconds` seconds, the current one included. */
  count(key: string, seconds: number, nowMs = Date.now()): number {
    let sum = 0;
    for (const n of this.series(key, seconds, nowMs)) sum += n;
    return sum;
  }

  /** Starts counting the bus's published messages by database; returns the unsubscribe function. */
  attach(bus: Bus): () => void {
    const onPublished = (db: string, messages: readonly unknown[]): void => this.record(db, messages.length);
    bus.on("message:published", onPublished);
    return () => bus.off("message:published", onPublished);
  }
}
