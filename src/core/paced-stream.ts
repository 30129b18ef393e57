import type { DbLog } from "./db-log.js";
import type { Listener } from "./listener.js";
import type { StoredMessage } from "../stores/store.js";

/** Where a live subscription's messages go (a WebSocket connection, an SSE response). */
export interface StreamSink {
  /** After the first read, before any message: whether messages may have been missed (a gap). */
  start(gap: boolean): void;
  /** One message, in log order, once. `gap` marks the first message after a gap found mid-stream. */
  message(m: StoredMessage, gap: boolean): void;
  /** A gap found mid-stream with no message after it on these channels. */
  gap(channels: readonly string[]): void;
  /** End of a batch: a catch-up page, or one live dispatch of the log. */
  flush(): void;
  /** Resolves when the consumer can take another catch-up page; undefined when it can now. */
  writable(): Promise<void> | undefined;
  /** A catch-up read failed (store down); the stream is closed and the client should resume. */
  error(error: unknown): void;
  /** The stream was closed (by `close`, or by removing its last channel). */
  end?(): void;
}

/**
 * A live subscription to some channels of one database: first what was missed after the
 * cursor, page by page and only as fast as the consumer takes it, then live messages, with
 * neither a gap nor a duplicate at the seam. Like the core's Stream, plus backpressure
 * during catch-up (a resume across a long backlog must not fill the send buffer) and
 * channels that can be removed while it runs.
 */
export class PacedStream implements Listener {
  private closed = false;
  private live = false;
  /** Last message delivered (the log advances it for live messages). */
  cursor: string | null;

  constructor(
    private readonly log: DbLog,
    /** Owned by the stream; channels are removed through `removeChannels`. */
    readonly channels: Set<string>,
    after: string | null,
    private readonly sink: StreamSink,
    private readonly pageSize: number,
  ) {
    this.cursor = after;
    void this.catchUp(after);
  }

  // The stream is its own listener: methods, not closures, as thousands of streams may be open.
  push(m: StoredMessage): void {
    this.sink.message(m, false);
  }

  flush(): void {
    this.sink.flush();
  }

  /** The log lost what came after our cursor (retention passed it, a wiped store): say so first. */
  gap(): void {
    this.sink.gap([...this.channels]);
  }

  private async catchUp(after: string | null): Promise<void> {
    let cursor = after;
    let first = true;
    try {
      for (;;) {
        // With nothing left to catch up, fetch registers our listener in the same tick.
        const res = await this.log.fetch(this.channels, cursor, this.pageSize, this);
        if (this.closed) {
          this.log.removeListener(this);
          return;
        }
        let gap = res.gap;
        if (first) {
          first = false;
          this.sink.start(gap);
          gap = false;
        }
        if (res.messages.length === 0) {
          this.live = true;
          if (gap) this.sink.gap([...this.channels]);
          return;
        }
        cursor = res.messages[res.messages.length - 1]!.id;
        this.cursor = cursor;
        for (const m of res.messages) {
          // A channel removed while this page was read is not delivered.
          if (!this.channels.has(m.channel)) continue;
          this.sink.message(m, gap);
          gap = false;
        }
        this.sink.flush();
        const wait = this.sink.writable();
        if (wait !== undefined) await wait;
        if (this.closed) return;
      }
    } catch (error) {
      if (this.closed) return;
      this.close();
      this.sink.error(error);
    }
  }

  /** Stops delivering `channels`; true when none is left (the stream is then closed). */
  removeChannels(channels: Iterable<string>): boolean {
    if (this.live) this.log.removeListener(this);
    for (const c of channels) this.channels.delete(c);
    if (this.channels.size === 0) {
      this.close();
      return true;
    }
    if (this.live) this.log.addListener(this);
    return false;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.live) this.log.removeListener(this);
    this.sink.end?.();
  }
}
