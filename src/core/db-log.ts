import type { AppendResult, Store, StoredMessage } from "../stores/store.js";
import type { Delivery, Listener } from "./listener.js";

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

/** Where a reader stands: after a message id, or (null) at the start of what the tail holds. */
type Cursor = string | null;

/**
 * One database's view of the log in this process: a hot tail of recent messages, the index
 * of listeners by channel, and the single refresh loop that pulls new messages from the
 * store. A publish, or a wake-up from another instance, costs one store read whatever the
 * number of listeners; every listener sees messages in log order.
 */
export class DbLog {
  private tail: StoredMessage[] = [];
  /** The size of what `tail` holds, by `tailBytesOf`. */
  private tailBytes = 0;
  /**
   * Exclusive lower bound of what the tail holds: every message with cover < id <= head is
   * in `tail`. `undefined` until the log is loaded; null when the tail holds the whole log.
   */
  private cover: string | null | undefined = undefined;
  private headId: string | null = null;
  private readonly index = new Map<string, Set<Listener>>();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  readonly ready: Promise<void>;
  private closed = false;

  constructor(
    readonly db: string,
    private readonly store: Store,
    private readonly options: DbLogOptions,
  ) {
    this.ready = this.load();
  }

  get head(): string | null {
    return this.headId;
  }

  /** Distinct listeners (a listener on several channels counts once). */
  get listenerCount(): number {
    const all = new Set<Listener>();
    for (const set of this.index.values()) for (const l of set) all.add(l);
    return all.size;
  }

  /** Messages held in the hot tail (read-only, for the admin page). */
  get tailLength(): number {
    return this.tail.length;
  }

  /** Bytes the hot tail holds, as counted against tailMaxBytes. */
  get tailByteSize(): number {
    return this.tailBytes;
  }

  /** Listeners per channel with any (read-only, for the admin page). */
  *channelListeners(): IterableIterator<[channel: string, listeners: number]> {
    for (const [channel, set] of this.index) yield [channel, set.size];
  }

  private async load(): Promise<void> {
    const head = await this.timed(() => this.store.head(this.db));
    this.headId = head;
    this.cover = head;
  }

  close(): void {
    this.closed = true;
    this.index.clear();
  }

  // ---- new messages ------------------------------------------------------------------------

  /**
   * Messages this process just appended to a store that is not shared: they are the next
   * log entries, so they go straight to the tail without a store read. When the store says
   * another process appended in between (`previous` is not our head), a read fetches both
   * in log order instead: the tail never holds a hole.
   */
  ingestLocal(messages: AppendResult): void {
    const missed = messages.previous !== undefined && messages.previous !== this.headId;
    if (this.cover === undefined || this.refreshing !== null || missed) {
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
            const res = await this.timed(() => this.store.read(this.db, { after: this.headId, limit: REFRESH_PAGE }));
            if (this.closed) return;
            if (res.gap) {
              // Retention removed what came after our head, or the store was wiped: start the
              // tail afresh from the oldest retained message, which then bounds what the tail
              // vouches for. Live listeners were past our head: they must be told too.
              this.tail = [];
              this.tailBytes = 0;
              this.signalGap();
              if (res.messages.length > 0) {
                this.ingest(res.messages);
                const first = this.tail.shift();
                if (first !== undefined) this.tailBytes -= tailBytesOf(first);
                this.cover = first?.id ?? this.headId;
              } else {
                // Nothing retained: an empty log, so that the next read is not a gap again.
                this.headId = null;
                this.cover = null;
              }
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
    if (this.cover === undefined) return;
    let drop = 0;
    while (drop < this.tail.length && (oldest === null || this.tail[drop]!.id < oldest)) drop++;
    if (drop === 0) return;
    this.dropOldest(drop);
  }

  private ingest(messages: readonly StoredMessage[]): void {
    for (const m of messages) {
      this.tail.push(m);
      this.tailBytes += tailBytesOf(m);
    }
    this.headId = messages[messages.length - 1]!.id;
    // Evict in chunks, so a full tail does not copy itself on every publish.
    const excess = this.tail.length - this.options.tailSize;
    let drop = excess > 0 && (excess >= 1024 || excess * 8 >= this.options.tailSize) ? excess : 0;
    const maxBytes = this.options.tailMaxBytes;
    if (maxBytes !== undefined && this.tailBytes > maxBytes) {
      // Past the byte bound: down to 7/8 of it, for the same reason.
      let bytes = this.tailBytes;
      for (let i = 0; i < drop; i++) bytes -= tailBytesOf(this.tail[i]!);
      while (drop < this.tail.length && bytes > maxBytes - (maxBytes >>> 3)) bytes -= tailBytesOf(this.tail[drop++]!);
    }
    if (drop > 0) this.dropOldest(drop);
    this.dispatch(messages);
  }

  /** Removes the `n` oldest messages of the tail; reads before what is left go to the store. */
  private dropOldest(n: number): void {
    for (let i = 0; i < n; i++) this.tailBytes -= tailBytesOf(this.tail[i]!);
    this.cover = this.tail[n - 1]!.id;
    this.tail = this.tail.slice(n);
  }

  /** Every listener's cursor points into what may be lost: whatever comes next is new to it. */
  private signalGap(): void {
    const all = new Set<Listener>();
    for (const set of this.index.values()) for (const l of set) all.add(l);
    for (const l of all) {
      l.cursor = null;
      l.gap?.();
    }
  }

  private dispatch(messages: readonly StoredMessage[]): void {
    if (this.index.size === 0) return;
    const touched = new Set<Listener>();
    for (const m of messages) {
      const set = this.index.get(m.channel);
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

  // ---- listeners ------------------------------------------------------------------------------

  addListener(l: Listener): void {
    for (const c of l.channels) {
      let set = this.index.get(c);
      if (set === undefined) {
        set = new Set();
        this.index.set(c, set);
      }
      set.add(l);
    }
  }

  removeListener(l: Listener): void {
    for (const c of l.channels) {
      const set = this.index.get(c);
      if (set === undefined) continue;
      set.delete(l);
      if (set.size === 0) this.index.delete(c);
    }
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
        const fromTail = this.scanSince(channels, sinceTs, limit);
        if (fromTail !== null) return answer(fromTail, gap, this.headId);
      } else if (this.covers(cursor)) {
        return answer(this.scanAfter(channels, cursor, limit), gap, cursor);
      } else if (cursor !== null && this.beyondHead(cursor) && attempt < 3) {
        // Another instance served this client further than we have read: catch up first.
        await this.refresh();
        continue;
      }
      const headBefore = this.headId;
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
        if (attempt >= 3 && !this.covers(cursor)) return answer([], gap, cursor);
      }
    }
  }

  /**
   * `fetch` without awaiting, when the tail alone can answer (a client re-polling from a
   * recent cursor); null otherwise. A caller that finds nothing and wants to wait adds its
   * listener from `position` in the same tick.
   */
  fetchNow(channels: ReadonlySet<string>, after: Cursor, limit: number): (Delivery & { position: Cursor }) | null {
    if (after === null || !this.covers(after)) return null;
    return { messages: this.scanAfter(channels, after, limit), gap: false, position: after };
  }

  /** Whether the tail alone can answer a read after `cursor`. */
  private covers(cursor: Cursor): boolean {
    if (this.cover === undefined) return false;
    if (cursor === null) return this.cover === null;
    if (this.headId === null) return false;
    if (cursor > this.headId || !sameEpoch(cursor, this.headId)) return false;
    return this.cover === null || cursor >= this.cover;
  }

  private beyondHead(cursor: string): boolean {
    return this.headId === null || (sameEpoch(cursor, this.headId) && cursor > this.headId);
  }

  private scanAfter(channels: ReadonlySet<string>, cursor: Cursor, limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (let i = cursor === null ? 0 : this.firstIndexAfter(cursor); i < this.tail.length && out.length < limit; i++) {
      const m = this.tail[i]!;
      if (channels.has(m.channel)) out.push(m);
    }
    return out;
  }

  /** Messages stamped since `sinceTs`, or null when the tail may not hold all of them. */
  private scanSince(channels: ReadonlySet<string>, sinceTs: number, limit: number): StoredMessage[] | null {
    if (this.cover === undefined) return null;
    if (this.cover !== null) {
      // Unless the tail reaches back before the window, older messages of it are only in the store.
      const first = this.tail[0];
      if (first === undefined || first.ts >= sinceTs) return null;
    }
    let i = this.tail.length;
    while (i > 0 && this.tail[i - 1]!.ts >= sinceTs) i--;
    const out: StoredMessage[] = [];
    for (; i < this.tail.length && out.length < limit; i++) {
      const m = this.tail[i]!;
      if (channels.has(m.channel)) out.push(m);
    }
    return out;
  }

  private firstIndexAfter(cursor: string): number {
    let lo = 0;
    let hi = this.tail.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.tail[mid]!.id <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
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

/** What a message costs the tail: its JSON and channel (one byte a character) and the object around them. */
function tailBytesOf(m: StoredMessage): number {
  return m.json.length + m.channel.length + m.id.length + 64;
}

function sameEpoch(a: string, b: string): boolean {
  const ca = a.indexOf(":");
  if (ca <= 0 || ca !== b.indexOf(":")) return false;
  // Compared in place: this runs on every poll, and slices are allocations.
  for (let i = 0; i < ca; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false;
  return true;
}
