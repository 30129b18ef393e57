import type { AppendEntry, ReadQuery, ReadResult, RetentionPolicy, StoredMessage } from "../store.js";
import { formatId, parseSeqId, seqPosition, withMessageId } from "../message-id.js";

interface Entry extends StoredMessage {
  readonly seq: number;
}

/** One database's log held in an array; the reference semantics for every engine. */
export class MemoryLog {
  private readonly entries: Entry[] = [];
  private nextSeq = 1;
  /** Highest sequence number removed by retention (0: none). */
  private trimmedThrough = 0;

  constructor(private readonly epoch: string) {}

  append(batch: readonly AppendEntry[], now: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (const e of batch) {
      const seq = this.nextSeq++;
      const id = formatId(this.epoch, seqPosition(seq));
      const entry: Entry = { id, seq, channel: e.channel, type: e.type, ts: now, json: withMessageId(e.payload, id) };
      this.entries.push(entry);
      out.push(entry);
    }
    return out;
  }

  read(q: ReadQuery): ReadResult {
    let startIndex: number;
    let gap = false;
    if (q.after === null) {
      startIndex = q.sinceTs === undefined ? 0 : this.firstIndexAtOrAfterTs(q.sinceTs);
    } else {
      const seq = parseSeqId(q.after, this.epoch);
      if (seq === null || seq < this.trimmedThrough || seq >= this.nextSeq) {
        gap = true;
        startIndex = 0;
      } else {
        startIndex = this.firstIndexAfterSeq(seq);
      }
    }
    const channels = q.channels ? new Set(q.channels) : null;
    const messages: StoredMessage[] = [];
    for (let i = startIndex; i < this.entries.length && messages.length < q.limit; i++) {
      const e = this.entries[i]!;
      if (channels === null || channels.has(e.channel)) messages.push(e);
    }
    return { messages, gap };
  }

  head(): string | null {
    const last = this.entries[this.entries.length - 1];
    return last ? last.id : null;
  }

  trim(policy: RetentionPolicy, now: number): number {
    let drop = 0;
    if (policy.maxCount > 0 && this.entries.length > policy.maxCount) drop = this.entries.length - policy.maxCount;
    if (policy.maxAgeMs > 0) {
      const cutoff = now - policy.maxAgeMs;
      while (drop < this.entries.length && this.entries[drop]!.ts < cutoff) drop++;
    }
    if (drop === 0) return 0;
    this.trimmedThrough = this.entries[drop - 1]!.seq;
    this.entries.splice(0, drop);
    return drop;
  }

  private firstIndexAfterSeq(seq: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private firstIndexAtOrAfterTs(ts: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.ts < ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
