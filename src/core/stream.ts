import type { StoredMessage } from "../stores/store.js";
import type { DbLog } from "./db-log.js";
import { PacedStream, type StreamSink } from "./paced-stream.js";

const CATCH_UP_PAGE = 500;

export interface StreamHandlers {
  /** Messages in log order, once each. `gap` is true on the first batch after a lost cursor. */
  onMessages(messages: readonly StoredMessage[], gap: boolean): void;
  /** The catch-up read failed (store down): the stream is closed, the client should resume. */
  onError?(error: unknown): void;
}

/**
 * A subscription for code inside the server (commands, tests): the paced stream that
 * WebSocket and SSE use, with batches handed to callbacks and no backpressure (the
 * callbacks consume synchronously).
 */
export class Stream {
  private readonly paced: PacedStream;

  constructor(log: DbLog, channels: ReadonlySet<string>, after: string | null, handlers: StreamHandlers) {
    this.paced = new PacedStream(log, new Set(channels), after, new BatchSink(handlers), CATCH_UP_PAGE);
  }

  get cursor(): string | null {
    return this.paced.cursor;
  }

  close(): void {
    this.paced.close();
  }
}

/** Collects a batch of messages and hands it over on flush, with the gap flag of its first. */
class BatchSink implements StreamSink {
  private batch: StoredMessage[] = [];
  private gapPending = false;
  private closed = false;

  constructor(private readonly handlers: StreamHandlers) {}

  start(gap: boolean): void {
    // Said before anything else, even when nothing follows yet.
    if (gap && !this.closed) this.handlers.onMessages([], true);
  }

  message(m: StoredMessage, gap: boolean): void {
    if (gap) this.gapPending = true;
    this.batch.push(m);
  }

  gap(): void {
    // A gap with nothing after it yet: said at once, as an empty batch.
    this.gapPending = false;
    if (!this.closed) this.handlers.onMessages([], true);
  }

  flush(): void {
    if (this.batch.length === 0 && !this.gapPending) return;
    const batch = this.batch;
    const gap = this.gapPending;
    this.batch = [];
    this.gapPending = false;
    if (!this.closed) this.handlers.onMessages(batch, gap);
  }

  writable(): undefined {
    return undefined;
  }

  error(error: unknown): void {
    this.handlers.onError?.(error);
  }

  end(): void {
    this.closed = true;
  }
}
