import type { StoredMessage } from "../stores/store.js";

/** Where a reader stands: after a message id, or (null) at the start of what the tail holds. */
export type Cursor = string | null;

export interface TailBounds {
  /** How many recent messages the tail holds at most. */
  readonly size: number;
  /** How many bytes of messages (their JSON) it holds at most; the oldest go first. */
  readonly maxBytes?: number | undefined;
}

/**
 * The hot tail of one database's log: the most recent messages in log order, bounded by
 * count and bytes, and what it can vouch for. Reads it covers are answered without the
 * store; it knows nothing of listeners or of the store.
 */
export class TailCache {
  private tail: StoredMessage[] = [];
  /** The size of what `tail` holds, by `tailBytesOf`. */
  private bytes = 0;
  /**
   * Exclusive lower bound of what the tail holds: every message with cover < id <= head is
   * in `tail`. `undefined` until loaded; null when the tail holds the whole log.
   */
  private cover: string | null | undefined = undefined;
  private headId: string | null = null;

  constructor(private readonly bounds: TailBounds) {}

  get head(): string | null {
    return this.headId;
  }
  get loaded(): boolean {
    return this.cover !== undefined;
  }
  get length(): number {
    return this.tail.length;
  }
  get byteSize(): number {
    return this.bytes;
  }

  /** Starts empty at the store's head: everything after it will pass through here. */
  load(head: string | null): void {
    this.headId = head;
    this.cover = head;
  }

  /** Appends messages that follow the head, then evicts the oldest beyond the bounds. */
  append(messages: readonly StoredMessage[]): void {
    for (const m of messages) {
      this.tail.push(m);
      this.bytes += tailBytesOf(m);
    }
    this.headId = messages[messages.length - 1]!.id;
    // Evict in chunks, so a full tail does not copy itself on every publish.
    const excess = this.tail.length - this.bounds.size;
    let drop = excess > 0 && (excess >= 1024 || excess * 8 >= this.bounds.size) ? excess : 0;
    const maxBytes = this.bounds.maxBytes;
    if (maxBytes !== undefined && this.bytes > maxBytes) {
      // Past the byte bound: down to 7/8 of it, for the same reason.
      let bytes = this.bytes;
      for (let i = 0; i < drop; i++) bytes -= tailBytesOf(this.tail[i]!);
      while (drop < this.tail.length && bytes > maxBytes - (maxBytes >>> 3)) bytes -= tailBytesOf(this.tail[drop++]!);
    }
    if (drop > 0) this.dropOldest(drop);
  }

  /**
   * The store lost what came after our head (retention, or wiped): the tail starts afresh
   * from `retained`, the oldest messages it still holds, which then bound what it vouches
   * for; with none retained, from an empty log.
   */
  restart(retained: readonly StoredMessage[]): void {
    this.tail = [];
    this.bytes = 0;
    if (retained.length === 0) {
      this.headId = null;
      this.cover = null;
      return;
    }
    this.append(retained);
    const first = this.tail.shift();
    if (first !== undefined) this.bytes -= tailBytesOf(first);
    this.cover = first?.id ?? this.headId;
  }

  /** Drops what retention removed from the store: messages before `oldest` (null: all). */
  forgetBefore(oldest: string | null): void {
    if (this.cover === undefined) return;
    let drop = 0;
    while (drop < this.tail.length && (oldest === null || this.tail[drop]!.id < oldest)) drop++;
    if (drop > 0) this.dropOldest(drop);
  }

  /** Removes the `n` oldest messages; reads before what is left go to the store. */
  private dropOldest(n: number): void {
    for (let i = 0; i < n; i++) this.bytes -= tailBytesOf(this.tail[i]!);
    this.cover = this.tail[n - 1]!.id;
    this.tail = this.tail.slice(n);
  }

  /** Whether the tail alone can answer a read after `cursor`. */
  covers(cursor: Cursor): boolean {
    if (this.cover === undefined) return false;
    if (cursor === null) return this.cover === null;
    if (this.headId === null) return false;
    if (cursor > this.headId || !sameEpoch(cursor, this.headId)) return false;
    return this.cover === null || cursor >= this.cover;
  }

  /** Whether `cursor` lies beyond what this process has read (another instance served it further). */
  beyondHead(cursor: string): boolean {
    return this.headId === null || (sameEpoch(cursor, this.headId) && cursor > this.headId);
  }

  scanAfter(channels: ReadonlySet<string>, cursor: Cursor, limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (let i = cursor === null ? 0 : this.firstIndexAfter(cursor); i < this.tail.length && out.length < limit; i++) {
      const m = this.tail[i]!;
      if (channels.has(m.channel)) out.push(m);
    }
    return out;
  }

  /** Messages stamped since `sinceTs`, or null when the tail may not hold all of them. */
  scanSince(channels: ReadonlySet<string>, sinceTs: number, limit: number): StoredMessage[] | null {
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
