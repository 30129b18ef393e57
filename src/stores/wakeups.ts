/**
 * The wake-up machinery every engine shares: the listeners of `onAppend`, the databases
 * this instance has touched, a coalescing runner for notifications, and a safety-net poll.
 * A wake-up is a hint that carries a database name, never data: readers re-read the log.
 */

export type WakeupListener = (db: string) => void;

export class WakeupHub {
  private readonly listeners = new Set<WakeupListener>();
  private readonly known = new Set<string>();

  /** `onError` hears a listener's failure; one listener failing never stops the others' wake-ups. */
  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  listen(listener: WakeupListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** This instance uses `db`: it is woken after a reconnect and watched by the safety net. */
  touch(db: string): void {
    this.known.add(db);
  }

  knownDatabases(): string[] {
    return [...this.known];
  }

  fire(db: string): void {
    for (const listener of this.listeners) {
      try {
        listener(db);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** Wake-ups may have been lost (a reconnect): every known database re-reads. */
  fireKnown(): void {
    for (const db of this.known) this.fire(db);
  }

  /** At close: no listener outlives the store. */
  clear(): void {
    this.listeners.clear();
  }
}

/**
 * At most one run in flight per key, and one more for whatever asked meanwhile: a burst
 * of appends to one database sends two notifications, not one per append.
 */
export class Coalescer {
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();

  constructor(private readonly onError: (error: unknown) => void) {}

  /** Runs `task` for `key` now, or once more after the run in flight; `live()` false stops the repeats. */
  run(key: string, task: () => Promise<unknown>, live: () => boolean): void {
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    this.running.add(key);
    void (async () => {
      try {
        do {
          this.again.delete(key);
          await task();
        } while (this.again.has(key) && live());
      } catch (err) {
        this.onError(err);
      } finally {
        this.running.delete(key);
      }
    })();
  }
}

/**
 * The safety net under notifications: every `intervalMs`, the heads of the known databases
 * are read, and a database whose head moved since the last look is woken. A tick still
 * running when the next is due makes it skip; the timer never keeps the process alive.
 */
export class HeadPoll {
  private readonly seen = new Map<string, string | null>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;

  constructor(
    private readonly intervalMs: number,
    private readonly hub: WakeupHub,
    private readonly heads: (dbs: string[]) => Promise<Iterable<readonly [string, string | null]>>,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    const dbs = this.hub.knownDatabases();
    if (this.polling || this.timer === null || dbs.length === 0) return;
    this.polling = true;
    try {
      for (const [db, head] of await this.heads(dbs)) {
        if (this.seen.has(db) && this.seen.get(db) === head) continue;
        this.seen.set(db, head);
        if (this.timer !== null) this.hub.fire(db);
      }
    } catch (err) {
      if (this.timer !== null) this.onError(err);
    } finally {
      this.polling = false;
    }
  }
}
