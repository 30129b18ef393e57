import type { AppendResult, Store, StoredMessage } from "../stores/store.js";
import type { Delivery, Listener } from "./listener.js";
import { ListenerIndex } from "./listener-index.js";
import { TailCache, type Cursor } from "./tail-cache.js";

const REFRESH_PAGE = 1000;

export interface DbLogOptions {
  /** How many recent messages stay in memory to answer readers without a store read. */
  readonly tailSize: number;
  /** How many bytes of messages (their JSON) the tail holds at most; the oldest go first. */
  readonly tailMaxBytes?: number;
  /** What a reader without a cursor gets: messages of the last this many milliseconds. */
  readonly noCursorWindowMs: number;
  readonly onStoreRead?: (ms: number) => void;
  /** A background store read failed (the next publish or wake-up retries). */
  readonly onError?: (error: unknown) => void;
}

/**
 * One database's log in this process: keeps its hot tail (tail-cache.ts) and its listeners
 * (listener-index.ts) in step with the store. A single refresh loop pulls new messages, so
 * a publish, or a wake-up from another instance, costs one store read whatever the number
 * of listeners; reads the tail cannot answer go through to the store.
 */
export class DbLog {
  private readonly tail: TailCache;
  private readonly listeners = new ListenerIndex();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  readonly ready: Promise<void>;
  private closed = false;

  constructor(
    readonly db: string,
    private readonly store: Store,
    private readonly options: DbLogOptions,
  ) {
    this.tail = new TailCache({ size: options.tailSize, maxBytes: options.tailMaxBytes });
    this.ready = this.load();
  }

  get head(): string | null {
    return this.tail.head;
  }

  /** Distinct listeners (a listener on several channels counts once). */
  get listenerCount(): number {
    return this.listeners.count;
  }

  /** Messages held in the hot tail (read-only, for the admin page). */
  get tailLength(): number {
    return this.tail.length;
  }

  /** Bytes the hot tail holds, as counted against tailMaxBytes. */
  get tailByteSize(): number {
    return this.tail.byteSize;
  }

  /** Listeners per channel with any (read-only, for the admin page). */
  channelListeners(): IterableIterator<[channel: string, listeners: number]> {
    return this.listeners.perChannel();
  }

  private async load(): Promise<void> {
    this.tail.load(await this.timed(() => this.store.head(this.db)));
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  // ---- new messages ------------------------------------------------------------------------

  /**
   * Messages this process just appended to a store that is not shared: they are the next
   * log entries, so they go straight to the tail without a store read. When the store says
   * another process appended in between (`previous` is not our head), a read fetches both
   * in log order instead: the tail never holds a hole.
   */
  ingestLocal(messages: AppendResult): void {
    const missed = messages.previous !== undefined && messages.previous !== this.tail.head;
    if (!this.tail.loaded || this.refreshing !== null || missed) {
      // Not loaded yet, a refresh in flight, or an append of another process to read first:
      // let the refresh pick them up in order.
      this.refresh().catch((e: unknown) => this.options.onError?.(e));
      return;
    }
    this.ingest(messages);
  }

  /** Re-reads the store after the head; calls coalesce so at most one read runs at a time. */
  refresh(): Promise<void> {
    if (this.refreshing !== null) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        await this.ready;
        do {
          this.refreshAgain = false;
          for (;;) {
            const res = await this.timed(() => this.store.read(this.db, { after: this.tail.head, limit: REFRESH_PAGE }));
            if (this.closed) return;
            if (res.gap) {
              // Retention removed what came after our head, or the store was wiped. Live
              // listeners were past our head: they must be told too.
              this.listeners.signalGap();
              this.tail.restart(res.messages);
              this.listeners.dispatch(res.messages);
            } else if (res.messages.length > 0) {
              this.ingest(res.messages);
            }
            if (res.messages.length < REFRESH_PAGE) break;
          }
        } while (this.refreshAgain);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * Drops from the tail what retention removed from the store: messages before `oldest`
   * (the oldest retained id, or null when the store holds none). Cursors older than that
   * then go to the store, which answers them with the gap signal.
   */
  forgetBefore(oldest: string | null): void {
    this.tail.forgetBefore(oldest);
  }

  private ingest(messages: readonly StoredMessage[]): void {
    this.tail.append(messages);
    this.listeners.dispatch(messages);
  }

  // ---- listeners ------------------------------------------------------------------------------

  addListener(l: Listener): void {
    this.listeners.add(l);
  }

  removeListener(l: Listener): void {
    this.listeners.remove(l);
  }

  // ---- reading ----------------------------------------------------------------------------------

  /**
   * Reads up to `limit` messages on `channels` after `after` (null: those of the last
   * no-cursor window). When none is found and `park` is given, it is registered as a
   * listener from the position reached, in the same tick, so that nothing published in
   * between can be missed.
   */
  async fetch(
    channels: ReadonlySet<string>,
    after: Cursor,
    limit: number,
    park?: Listener,
  ): Promise<Delivery & { position: Cursor }> {
    await this.ready;
    // Every answer goes through here synchronously after its last await: parking happens in
    // the same tick as the scan that found nothing.
    const answer = (messages: StoredMessage[], gap: boolean, position: Cursor): Delivery & { position: Cursor } => {
      if (messages.length === 0 && park !== undefined) {
        park.cursor = position;
        this.addListener(park);
      }
      return { messages, gap, position };
    };
    let gap = false;
    let cursor: Cursor = after;
    let sinceTs = after === null ? Date.now() - this.options.noCursorWindowMs : undefined;
    for (let attempt = 0; ; attempt++) {
      if (sinceTs !== undefined) {
        const fromTail = this.tail.scanSince(channels, sinceTs, limit);
        if (fromTail !== null) return answer(fromTail, gap, this.tail.head);
      } else if (this.tail.covers(cursor)) {
        return answer(this.tail.scanAfter(channels, cursor, limit), gap, cursor);
      } else if (cursor !== null && this.tail.beyondHead(cursor) && attempt < 3) {
        // Another instance served this client further than we have read: catch up first.
        await this.refresh();
        continue;
      }
      const headBefore = this.tail.head;
      const res = await this.timed(() =>
        this.store.read(this.db, {
          after: sinceTs !== undefined ? null : cursor,
          ...(sinceTs !== undefined ? { sinceTs } : {}),
          channels: [...channels],
          limit,
        }),
      );
      gap ||= res.gap;
      if (res.messages.length > 0) {
        const last = res.messages[res.messages.length - 1]!.id;
        return answer(res.messages, gap, last);
      }
      // Nothing on these channels up to headBefore: continue from there in the tail.
      sinceTs = undefined;
      if (res.gap || cursor === null || headBefore === null || cursor < headBefore || attempt >= 3) {
        cursor = headBefore;
        if (attempt >= 3 && !this.tail.covers(cursor)) return answer([], gap, cursor);
      }
    }
  }

  /**
   * `fetch` without awaiting, when the tail alone can answer (a client re-polling from a
   * recent cursor); null otherwise. A caller that finds nothing and wants to wait adds its
   * listener from `position` in the same tick.
   */
  fetchNow(channels: ReadonlySet<string>, after: Cursor, limit: number): (Delivery & { position: Cursor }) | null {
    if (after === null || !this.tail.covers(after)) return null;
    return { messages: this.tail.scanAfter(channels, after, limit), gap: false, position: after };
  }

  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.options.onStoreRead?.(performance.now() - start);
    }
  }
}
