import { TidingsError } from "../../errors.js";
import { PacedStream } from "../../core/paced-stream.js";
import type { ConnectionApi } from "./connection-api.js";
import { SubscriptionSink } from "./subscription-sink.js";

/**
 * The subscriptions of one connection: one paced stream per subscribe request, each
 * channel in one stream at most, at most ws.maxSubscriptions channels in all.
 */
export class Subscriptions {
  private streams: PacedStream[] = [];
  private channelCount = 0;

  constructor(private readonly conn: ConnectionApi) {}

  /** Channels subscribed. */
  get count(): number {
    return this.channelCount;
  }

  /**
   * Subscribes channels not yet subscribed (no channel is delivered twice). `started` runs
   * once the first read is done, before any push, with whether a gap was found; the promise
   * settles then too.
   */
  add(channels: readonly string[], after: string | null, started: (gap: boolean) => void): Promise<void> {
    const fresh = channels.filter((c) => this.streamOf(c) === undefined);
    if (fresh.length === 0) {
      started(false);
      return Promise.resolve();
    }
    const max = this.conn.options.ws.maxSubscriptions;
    if (this.channelCount + fresh.length > max) {
      throw new TidingsError("TIDINGS_ERR_CHANNEL_TOO_MANY", `At most ${max} channels per connection.`, { details: { max } });
    }
    const log = this.conn.bus.log(this.conn.db);
    return new Promise<void>((resolve, reject) => {
      const sink = new SubscriptionSink(this.conn, { started, resolve, reject });
      const stream = new PacedStream(log, new Set(fresh), after, sink, this.pageSize());
      sink.stream = stream;
      this.streams.push(stream);
      this.channelCount += fresh.length;
    });
  }

  remove(channels: readonly string[]): void {
    const byStream = new Map<PacedStream, string[]>();
    for (const c of channels) {
      const stream = this.streamOf(c);
      if (stream === undefined) continue;
      const list = byStream.get(stream);
      if (list === undefined) byStream.set(stream, [c]);
      else if (!list.includes(c)) list.push(c);
    }
    for (const [stream, list] of byStream) {
      this.channelCount -= list.length;
      if (stream.removeChannels(list)) this.streams.splice(this.streams.indexOf(stream), 1);
    }
  }

  /** A stream that ended by itself (its catch-up read failed). */
  forget(stream: PacedStream): void {
    const i = this.streams.indexOf(stream);
    if (i < 0) return;
    this.streams.splice(i, 1);
    this.channelCount -= stream.channels.size;
  }

  channels(): string[] {
    const out: string[] = [];
    for (const s of this.streams) for (const c of s.channels) out.push(c);
    return out;
  }

  /** At close: every stream stops. */
  stop(): void {
    const streams = this.streams;
    this.streams = [];
    this.channelCount = 0;
    for (const s of streams) s.close();
  }

  /** The stream delivering `channel`. A scan: a connection has few streams (at most ws.maxSubscriptions). */
  private streamOf(channel: string): PacedStream | undefined {
    for (const s of this.streams) if (s.channels.has(channel)) return s;
    return undefined;
  }

  /** Catch-up pages sized so that one page of the largest messages stays under half the send cap. */
  private pageSize(): number {
    const { maxMessageBytes, ws } = this.conn.options;
    const perMessage = maxMessageBytes + 512;
    return Math.max(8, Math.min(500, Math.floor(ws.maxBufferedBytes / 2 / perMessage)));
  }
}
