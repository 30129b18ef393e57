import type { ServerResponse } from "node:http";
import type { Identity } from "../../core/identity.js";
import type { StoredMessage } from "../../stores/store.js";
import type { ServerContext } from "../http/context.js";
import { encodeComment, encodeGapEvent, encodeMessageEvent, encodeRetry } from "../../protocol/sse.js";
import { PacedStream, type StreamSink } from "../../core/paced-stream.js";
import type { DbLog } from "../../core/db-log.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

// A message's event text is the same for every stream: built once per message.
const eventTexts = new WeakMap<StoredMessage, string>();

function eventText(m: StoredMessage): string {
  let text = eventTexts.get(m);
  if (text === undefined) {
    text = encodeMessageEvent(m.id, m.channel, m.json);
    eventTexts.set(m, text);
  }
  return text;
}

/**
 * One open `text/event-stream` response: catch-up then live messages of its channels,
 * keep-alive comments, and an end when the credentials expire, the server drains, or the
 * client stops reading (its unsent data passed ws.maxBufferedBytes: the EventSource
 * reconnects and resumes with Last-Event-ID).
 */
export class EventStream implements StreamSink {
  private buffer = "";
  private count = 0;
  private ended = false;
  private cleaned = false;
  private readonly stream: PacedStream;
  private readonly keepAlive: NodeJS.Timeout;
  private expiry: NodeJS.Timeout | undefined;
  private readonly offDrain: () => void;

  constructor(
    private readonly server: ServerContext,
    private readonly res: ServerResponse,
    log: DbLog,
    who: Identity,
    private readonly channels: readonly string[],
    after: string | null,
  ) {
    const { options, bus } = server;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Proxies such as nginx would otherwise hold events back.
      "x-accel-buffering": "no",
    });
    res.write(encodeRetry(options.sseRetryMs));
    bus.metrics.connections.inc({ transport: "sse" });
    this.keepAlive = setInterval(() => this.write(encodeComment("keep-alive")), options.sseKeepAliveMs);
    this.keepAlive.unref();
    this.armExpiry(who.expiresAt);
    this.offDrain = server.onDrain(() => this.close());
    res.once("close", () => this.cleanup());
    const pageSize = Math.max(8, Math.min(500, Math.floor(options.ws.maxBufferedBytes / 2 / (options.maxMessageBytes + 512))));
    this.stream = new PacedStream(log, new Set(channels), after, this, pageSize);
    // The client may have gone while the request was authenticated: no close event will come.
    if (res.socket === null || res.socket.destroyed) this.cleanup();
  }

  // ---- StreamSink ------------------------------------------------------------------------------

  start(gap: boolean): void {
    if (gap) this.write(encodeGapEvent(this.channels));
  }

  message(m: StoredMessage, gap: boolean): void {
    if (gap) this.buffer += encodeGapEvent(this.channels);
    this.buffer += eventText(m);
    this.count++;
  }

  gap(channels: readonly string[]): void {
    this.buffer += encodeGapEvent(channels);
    this.flush();
  }

  flush(): void {
    if (this.buffer.length === 0) return;
    const text = this.buffer;
    this.buffer = "";
    this.server.bus.metrics.deliveredVia("sse").count += this.count;
    this.count = 0;
    this.write(text);
  }

  writable(): Promise<void> | undefined {
    const lowWater = Math.max(16 * 1024, Math.floor(this.server.options.ws.maxBufferedBytes / 4));
    if (this.ended || this.res.writableLength <= lowWater) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.res.off("drain", done);
        this.res.off("close", done);
        resolve();
      };
      this.res.once("drain", done);
      this.res.once("close", done);
    });
  }

  error(e: unknown): void {
    this.server.bus.logger.error({ err: e }, "SSE catch-up read failed");
    // The client reconnects with Last-Event-ID and resumes.
    this.res.destroy();
  }

  // ---- the response ------------------------------------------------------------------------------

  private write(text: string): void {
    if (this.ended || this.res.destroyed) return;
    this.res.write(text);
    if (this.res.writableLength > this.server.options.ws.maxBufferedBytes) {
      // The client is not reading: drop it rather than grow; it resumes from its last event.
      this.ended = true;
      this.res.destroy();
    }
  }

  private armExpiry(expiresAt: number | null): void {
    if (expiresAt === null) return;
    this.expiry = setTimeout(
      () => (expiresAt <= Date.now() ? this.close() : this.armExpiry(expiresAt)),
      Math.min(Math.max(0, expiresAt - Date.now()), MAX_TIMER_MS),
    );
    this.expiry.unref();
  }

  /** Ends the response cleanly (what is buffered is still sent). */
  private close(): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    this.res.end();
  }

  private cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    this.ended = true;
    this.stream.close();
    clearInterval(this.keepAlive);
    clearTimeout(this.expiry);
    this.offDrain();
    this.server.bus.metrics.connections.dec({ transport: "sse" });
  }
}
