import type { PublishItem } from "../../src/core/bus.js";
import type { TidingsBus as Bus } from "../../src/bus.js";

/**
 * A write-combiner, to measure what one would give the core: publishes issued while an
 * append is in flight wait, then go to the store together as one append (one transaction,
 * one wake-up), each caller getting its own ids back. Not used by tidings itself (yet).
 */
export class Combiner {
  private queue: { items: readonly PublishItem[]; resolve: (ids: string[]) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  constructor(
    private readonly bus: Bus,
    private readonly db: string,
    private readonly maxBatch = 1000,
  ) {}

  publishMany(items: readonly PublishItem[]): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    // Let the publishes of this turn join the first append.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch: typeof this.queue = [];
      let size = 0;
      while (this.queue.length > 0 && size + this.queue[0]!.items.length <= this.maxBatch) {
        const next = this.queue.shift()!;
        size += next.items.length;
        batch.push(next);
      }
      if (batch.length === 0) batch.push(this.queue.shift()!);
      try {
        const ids = await this.bus.publishMany(this.db, batch.flatMap((b) => b.items));
        let k = 0;
        for (const b of batch) {
          b.resolve(ids.slice(k, k + b.items.length));
          k += b.items.length;
        }
      } catch (e) {
        for (const b of batch) b.reject(e);
      }
    }
    this.running = false;
  }
}
