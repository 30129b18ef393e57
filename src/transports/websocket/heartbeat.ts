/** Something the heartbeat pings once per interval. */
export interface Beating {
  heartbeat(now: number, intervalMs: number): void;
  /** Which slice holds it (-1: none); kept on the member, as a map of 10,000 entries costs memory. */
  heartbeatSlice: number;
}

/** A slice of the interval shorter than this is not worth a timer tick of its own. */
const MIN_SLICE_MS = 50;
const MAX_SLICES = 64;

/**
 * Pings every member once per interval, spread over the interval: members are dealt into
 * slices and one slice is pinged per tick. Pinging 10,000 sockets in one burst is 10,000
 * socket writes in one turn of the event loop (tens of milliseconds here), which would hold
 * back every message published meanwhile. A member keeps its slice for life, so it is
 * pinged at a steady period whatever joins or leaves.
 */
export class Heartbeat<T extends Beating> {
  private readonly slices: Set<T>[];
  private nextSlice = 0;
  private tick = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly intervalMs: number) {
    const n = Math.max(1, Math.min(MAX_SLICES, Math.floor(intervalMs / MIN_SLICE_MS)));
    this.slices = Array.from({ length: n }, () => new Set<T>());
    this.timer = setInterval(() => this.beat(), intervalMs / n);
    this.timer.unref();
  }

  add(member: T): void {
    if (member.heartbeatSlice >= 0) return;
    member.heartbeatSlice = this.nextSlice;
    this.slices[this.nextSlice]!.add(member);
    this.nextSlice = (this.nextSlice + 1) % this.slices.length;
  }

  delete(member: T): void {
    if (member.heartbeatSlice < 0) return;
    this.slices[member.heartbeatSlice]?.delete(member);
    member.heartbeatSlice = -1;
  }

  private beat(): void {
    const slice = this.slices[this.tick]!;
    this.tick = (this.tick + 1) % this.slices.length;
    const now = Date.now();
    // A copy: a member may leave (terminate) while it is pinged.
    for (const m of [...slice]) m.heartbeat(now, this.intervalMs);
  }

  /** Stops the timer; safe to call twice. */
  close(): void {
    clearInterval(this.timer);
  }
}
