import type { StoredMessage } from "../stores/store.js";
import type { Listener } from "./listener.js";

/**
 * The fan-out of one database: its listeners by channel. New messages go to each listener
 * of their channel once, in log order, past the listener's cursor; each touched listener
 * is flushed once per batch.
 */
export class ListenerIndex {
  private readonly byChannel = new Map<string, Set<Listener>>();

  add(l: Listener): void {
    for (const c of l.channels) {
      let set = this.byChannel.get(c);
      if (set === undefined) {
        set = new Set();
        this.byChannel.set(c, set);
      }
      set.add(l);
    }
  }

  remove(l: Listener): void {
    for (const c of l.channels) {
      const set = this.byChannel.get(c);
      if (set === undefined) continue;
      set.delete(l);
      if (set.size === 0) this.byChannel.delete(c);
    }
  }

  /** Distinct listeners (a listener on several channels counts once). */
  get count(): number {
    return this.all().size;
  }

  /** Listeners per channel with any. */
  *perChannel(): IterableIterator<[channel: string, listeners: number]> {
    for (const [channel, set] of this.byChannel) yield [channel, set.size];
  }

  dispatch(messages: readonly StoredMessage[]): void {
    if (this.byChannel.size === 0) return;
    const touched = new Set<Listener>();
    for (const m of messages) {
      const set = this.byChannel.get(m.channel);
      if (set === undefined) continue;
      for (const l of set) {
        if (l.cursor !== null && m.id <= l.cursor) continue;
        l.cursor = m.id;
        l.push(m);
        touched.add(l);
      }
    }
    for (const l of touched) l.flush();
  }

  /** Every listener's cursor points into what may be lost: whatever comes next is new to it. */
  signalGap(): void {
    for (const l of this.all()) {
      l.cursor = null;
      l.gap?.();
    }
  }

  clear(): void {
    this.byChannel.clear();
  }

  private all(): Set<Listener> {
    const all = new Set<Listener>();
    for (const set of this.byChannel.values()) for (const l of set) all.add(l);
    return all;
  }
}
