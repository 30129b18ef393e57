/**
 * Fires command deadlines. Deadlines this process learns of (commands it sends or waits
 * for) within the horizon get a timer of their own and fire on time; every database that
 * has been used is also swept every `intervalMs`, which catches deadlines of commands sent
 * by other instances or before a restart.
 */
export interface ExpiryOptions {
  readonly intervalMs: number;
  /** Deadlines further than this are left to the sweep, so the heap stays small. */
  readonly horizonMs: number;
  /** Marks due commands of `db` expired (and announces them). */
  readonly expire: (db: string, now: number) => Promise<void>;
  /** A run of the timer or the sweep failed (the store unreachable): the next sweep tries again. */
  readonly onError: (error: unknown, db: string) => void;
}

interface Due {
  readonly at: number;
  readonly db: string;
}

export class ExpiryScheduler {
  private readonly heap: Due[] = [];
  /** `db\0at` of what the heap holds, so that a deadline seen twice gets one entry. */
  private readonly scheduled = new Set<string>();
  private readonly dbs = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedAt = Infinity;
  /** Started with the first database to sweep: a bus that never uses commands runs no timer. */
  private sweep: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(private readonly options: ExpiryOptions) {}

  /** Sweeps `db` from now on. */
  track(db: string): void {
    if (this.closed) return;
    this.dbs.add(db);
    if (this.sweep === undefined) {
      this.sweep = setInterval(() => {
        for (const d of this.dbs) this.runInBackground(d);
      }, this.options.intervalMs);
      this.sweep.unref?.();
    }
  }

  /** Makes sure a deadline of `db` fires on time (when it is near enough to be worth a timer). */
  schedule(db: string, at: number, now = Date.now()): void {
    if (this.closed || at - now > this.options.horizonMs) return;
    this.track(db);
    const key = `${db}\u0000${at}`;
    if (this.scheduled.has(key)) return;
    this.scheduled.add(key);
    push(this.heap, { at, db });
    this.arm();
  }

  /** Runs the expiry of `db` now, coalescing with a run in flight. */
  run(db: string): Promise<void> {
    const inFlight = this.running.get(db);
    if (inFlight !== undefined) {
      this.again.add(db);
      return inFlight;
    }
    const p = (async () => {
      try {
        do {
          this.again.delete(db);
          await this.options.expire(db, Date.now());
        } while (this.again.has(db) && !this.closed);
      } finally {
        this.running.delete(db);
      }
    })();
    this.running.set(db, p);
    return p;
  }

  /** `run` from a timer: nobody awaits it, so a failure is reported here rather than left unhandled (which ends the process). */
  private runInBackground(db: string): void {
    this.run(db).catch((e: unknown) => this.options.onError(e, db));
  }

  private arm(): void {
    const next = this.heap[0];
    if (next === undefined || this.closed) return;
    if (this.timer !== undefined && this.armedAt <= next.at) return;
    clearTimeout(this.timer);
    this.armedAt = next.at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.at - Date.now()));
    this.timer.unref?.();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = Date.now();
    const due = new Set<string>();
    // A timer may fire a millisecond before the wall clock reaches the deadline: keep those.
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const d = pop(this.heap)!;
      this.scheduled.delete(`${d.db}\u0000${d.at}`);
      due.add(d.db);
    }
    for (const db of due) this.runInBackground(db);
    this.arm();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.sweep);
    this.heap.length = 0;
    this.scheduled.clear();
  }
}

// A binary min-heap on `at`.
function push(heap: Due[], item: Due): void {
  heap.push(item);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.at <= heap[i]!.at) break;
    [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
    i = parent;
  }
}

function pop(heap: Due[]): Due | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length > 0 && last !== undefined) {
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && heap[l]!.at < heap[m]!.at) m = l;
      if (r < heap.length && heap[r]!.at < heap[m]!.at) m = r;
      if (m === i) break;
      [heap[m], heap[i]] = [heap[i]!, heap[m]!];
      i = m;
    }
  }
  return top;
}
