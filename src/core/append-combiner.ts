import type { AppendEntry, AppendResult, Store, StoredMessage } from "../stores/store.js";

interface Waiting {
  readonly entries: readonly AppendEntry[];
  readonly resolve: (stored: StoredMessage[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for one database: appends asked for while another is in flight go to the
 * store together as one append — one transaction and one wake-up for all of them. On
 * PostgreSQL each commit with a NOTIFY takes a cluster-wide lock, so one message per
 * transaction capped publishing near a thousand per second; combined, it is a tenth of
 * that cost. Each caller still gets its own messages back, in the order it gave them, and
 * its own all-or-nothing (the combined append is atomic). The first append of a quiet
 * database goes at once: combining adds no latency.
 */
export class AppendCombiner {
  private readonly waiting: Waiting[] = [];
  private running = false;

  constructor(
    private readonly store: Store,
    private readonly db: string,
    private readonly maxEntries: number,
    /** Called with every combined append's result, before any caller hears of it. */
    private readonly onAppended: (stored: AppendResult, ms: number) => void,
  ) {}

  append(entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ entries, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.takeGroup();
        const all = group.length === 1 ? group[0]!.entries : group.flatMap((w) => w.entries);
        let stored: AppendResult;
        const start = performance.now();
        try {
          stored = await this.store.append(this.db, all);
        } catch (error) {
          for (const w of group) w.reject(error);
          continue;
        }
        this.onAppended(stored, performance.now() - start);
        let offset = 0;
        for (const w of group) {
          w.resolve(stored.slice(offset, offset + w.entries.length));
          offset += w.entries.length;
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** The oldest waiting appends, up to maxEntries messages (always at least one caller). */
  private takeGroup(): Waiting[] {
    const group: Waiting[] = [this.waiting.shift()!];
    let size = group[0]!.entries.length;
    while (this.waiting.length > 0 && size + this.waiting[0]!.entries.length <= this.maxEntries) {
      const next = this.waiting.shift()!;
      size += next.entries.length;
      group.push(next);
    }
    return group;
  }
}
