import type { StoredMessage } from "../stores/store.js";
import type { DbLog } from "./db-log.js";
import type { Delivery, Listener } from "./listener.js";

export interface PollRequest {
  readonly channels: readonly string[];
  /** `channels` as a set, when the caller keeps one (a connection re-polling the same channels). */
  readonly channelSet?: ReadonlySet<string>;
  readonly after: string | null;
  /** Most messages in one answer (Tryton clients: 1). */
  readonly limit: number;
  /**
   * Most bytes of message JSON in one answer of several messages: the batch stops before
   * the message that would pass it. The first message is always taken, whatever its size.
   */
  readonly maxBytes?: number;
  readonly timeoutMs: number;
  /** Aborts the wait (client went away, server draining): resolves with what is there, usually nothing. */
  readonly signal?: AbortSignal;
  /**
   * A lighter alternative to `signal` for hot paths: called when the poll parks with a
   * function that ends the wait early (client gone, server draining).
   */
  bindCancel?(cancel: () => void): void;
  /** Called when the poll parks and when it unparks, for gauges and per-user caps. */
  onPark?(parked: boolean): void;
}

/** Where a poll started with `startPoll` ends. */
export interface PollSink {
  done(delivery: Delivery): void;
  fail(error: unknown): void;
}

/**
 * One long-poll: answers at once with what is after the cursor, else parks until a message
 * arrives on one of its channels, the timeout passes or the signal aborts.
 */
export function poll(log: DbLog, req: PollRequest): Promise<Delivery> {
  return new Promise((resolve, reject) => startPoll(log, req, { done: resolve, fail: reject }));
}

/**
 * `poll` to a sink: when the tail holds the answer, `sink.done` runs before this returns,
 * with no promise in between (the long-poll hot path answers in the request's own tick).
 */
export function startPoll(log: DbLog, req: PollRequest, sink: PollSink): void {
  const channels = req.channelSet ?? new Set(req.channels);
  const now = log.fetchNow(channels, req.after, req.limit);
  // Answered from the tail (a client draining a backlog): no poll state at all.
  if (now !== null && now.messages.length > 0) return sink.done(withinBytes(now, req.maxBytes));
  const pending = new PendingPoll(log, req, sink, channels);
  if (now === null) pending.read();
  else pending.parkAfter(now);
}

/** The size a message adds to an answer: its JSON as UTF-8, its channel and the envelope. */
export function answerBytes(m: StoredMessage): number {
  return Buffer.byteLength(m.json) + m.channel.length + 32;
}

/** The delivery cut before the message that would pass `maxBytes` (at least one is kept). */
function withinBytes(d: Delivery, maxBytes: number | undefined): Delivery {
  const { messages } = d;
  if (maxBytes === undefined || messages.length < 2) return d;
  // The first message is in the answer twice: as Tryton's "message" and in the batch.
  let bytes = answerBytes(messages[0]!);
  for (let i = 0; i < messages.length; i++) {
    bytes += answerBytes(messages[i]!);
    if (bytes > maxBytes && i > 0) return { messages: messages.slice(0, i), gap: d.gap };
  }
  return d;
}

/** One poll's state; a class rather than closures, as it is made once per request. */
class PendingPoll implements Listener {
  cursor: string | null;
  private readonly collected: StoredMessage[] = [];
  private collectedBytes = 0;
  /** A message did not fit in the answer's bytes: later ones are not taken either (order). */
  private full = false;
  private timer: NodeJS.Timeout | undefined;
  private finishBound: (() => void) | undefined;
  private parked = false;
  private finished = false;
  private missed = false;
  private firstGap = false;
  // Until the first read has answered (parked), a wake-up waits for it: its gap flag belongs in the answer.
  private woken = false;

  constructor(
    private readonly log: DbLog,
    private readonly req: PollRequest,
    private readonly sink: PollSink,
    readonly channels: ReadonlySet<string>,
  ) {
    this.cursor = req.after;
  }

  /** The tail found nothing after the cursor: listen from there, in the same tick as that scan. */
  parkAfter(empty: Delivery & { position: string | null }): void {
    this.cursor = empty.position;
    this.log.addListener(this);
    this.afterFirst(empty);
  }

  /** The tail cannot answer: read the store (which registers this listener when it finds nothing). */
  read(): void {
    const { req } = this;
    this.log.fetch(this.channels, req.after, req.limit, this).then(
      (first) => this.afterFirst(first),
      (error: unknown) => this.sink.fail(error),
    );
  }

  push(m: StoredMessage): void {
    if (this.full || this.collected.length >= this.req.limit) return;
    const { maxBytes } = this.req;
    if (maxBytes !== undefined && this.req.limit > 1) {
      const size = answerBytes(m);
      if (this.collected.length > 0 && this.collectedBytes + size > maxBytes) {
        this.full = true;
        return;
      }
      // The first message is in the answer twice: as Tryton's "message" and in the batch.
      this.collectedBytes += this.collected.length === 0 ? 2 * size : size;
    }
    this.collected.push(m);
  }

  flush(): void {
    this.woken = true;
    if (this.parked) this.finish();
  }

  // Told with the messages that follow (or the empty answer): the client resumes from them.
  gap(): void {
    this.missed = true;
  }

  private afterFirst(first: Delivery): void {
    if (first.messages.length > 0) {
      this.finished = true;
      this.sink.done(withinBytes(first, this.req.maxBytes));
      return;
    }
    this.firstGap = first.gap;
    const { req } = this;
    // Woken between the scan and here (the async read path), or nothing to wait for.
    if (this.woken || req.timeoutMs <= 0 || req.signal?.aborted) return this.finish();
    this.parked = true;
    req.onPark?.(true);
    const finish = (this.finishBound = () => this.finish());
    this.timer = setTimeout(finish, req.timeoutMs);
    req.signal?.addEventListener("abort", finish, { once: true });
    req.bindCancel?.(finish);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.log.removeListener(this);
    if (this.parked) {
      clearTimeout(this.timer);
      if (this.finishBound !== undefined) this.req.signal?.removeEventListener("abort", this.finishBound);
      this.req.onPark?.(false);
    }
    this.sink.done({ messages: this.collected, gap: this.firstGap || this.missed });
  }
}
