import { SseParser } from "../sse-parser.js";
import { deadline, openHttp, remoteError } from "./http.js";
import {
  AUTH_CODES,
  httpBase,
  Watchdog,
  type BusMessage,
  type DisconnectInfo,
  type StreamPlan,
  type StreamSink,
  type Transport,
  type TransportContext,
} from "./transport.js";
import { RemoteError } from "../types.js";

/**
 * Server-Sent Events read with `fetch`, not `EventSource`: EventSource cannot send an
 * Authorization header, so it would need the token in the URL (proxy logs) or a cookie; and
 * it reconnects on its own schedule and gives up on an error status, where the SDK wants its
 * own backoff, token refresh and cursor. The stream's keep-alive comments feed the liveness
 * check. A new plan opens a new stream (SSE cannot change channels in place).
 */
export class SseTransport implements Transport {
  readonly name = "sse" as const;
  readonly ended: Promise<DisconnectInfo>;
  private end!: (info: DisconnectInfo) => void;
  private stream: AbortController | null = null;
  private readonly stop = new AbortController();
  private readonly watchdog: Watchdog;
  private finished = false;
  private plan: { plan: StreamPlan; sink: StreamSink } | null = null;
  /** The last message id read on the current plan: a token refresh reopens from it. */
  private position: string | null = null;

  constructor(private readonly ctx: TransportContext) {
    this.ended = new Promise((resolve) => (this.end = resolve));
    this.watchdog = new Watchdog(ctx.livenessMs, () => this.finish(0, `nothing heard for ${ctx.livenessMs} ms (half-open connection)`));
  }

  open(): Promise<void> {
    return openHttp(this.ctx, this.stop.signal);
  }

  async sync(plan: StreamPlan, sink: StreamSink): Promise<void> {
    this.stream?.abort();
    this.stream = null;
    this.watchdog.stop();
    this.plan = { plan, sink };
    this.position = plan.cursor;
    if (plan.channels.length === 0) return;
    await this.connect(plan, sink);
  }

  private async connect(plan: StreamPlan, sink: StreamSink): Promise<void> {
    const controller = new AbortController();
    this.stream = controller;
    const params = new URLSearchParams();
    // One `channel=` each: a name may hold a comma (Tryton's chat:sale.sale,12).
    for (const c of plan.channels) params.append("channel", c);
    const token = await this.ctx.tokens.current();
    const headers: Record<string, string> = { accept: "text/event-stream", authorization: `Bearer ${token}` };
    if (this.position !== null) headers["last-event-id"] = this.position;
    const d = deadline(this.ctx.livenessMs, controller.signal);
    let res: Response;
    try {
      res = await this.ctx.fetch(`${httpBase(this.ctx)}/events?${params.toString()}`, { headers, signal: d.signal });
    } finally {
      d.clear();
    }
    if (!res.ok || res.body === null) {
      const text = await res.text().catch(() => "");
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        // a proxy's page
      }
      const error = remoteError(res.status, json);
      if (AUTH_CODES.has(error.code)) {
        this.ctx.reportError(error);
        // A fresh token next time; this connection is over.
        await this.ctx.tokens.refresh().catch(() => undefined);
        this.finish(res.status, `${error.code}: ${error.message}`);
      }
      throw error;
    }
    this.watchdog.feed();
    void this.read(res.body, controller, sink);
  }

  private async read(body: ReadableStream<Uint8Array>, controller: AbortController, sink: StreamSink): Promise<void> {
    const parser = new SseParser(
      (e) => {
        if (this.stream !== controller) return;
        if (e.event === "gap") {
          const channels = (safeJson(e.data) as { channels?: unknown } | null)?.channels;
          sink.gap(Array.isArray(channels) ? channels.filter((c): c is string => typeof c === "string") : null);
          return;
        }
        if (e.event !== "message") return;
        const d = safeJson(e.data) as { channel?: unknown; message?: BusMessage } | null;
        if (typeof d?.channel !== "string" || typeof d.message?.message_id !== "string") return;
        this.position = d.message.message_id;
        sink.message(d.channel, d.message);
      },
      () => undefined,
    );
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (this.stream !== controller) return;
        this.watchdog.feed();
        parser.push(decoder.decode(value, { stream: true }));
      }
      if (this.stream === controller) this.finish(0, "the server ended the stream");
    } catch (e) {
      if (this.stream === controller) this.finish(0, `stream failed: ${(e as Error).message}`);
    } finally {
      reader.releaseLock?.();
    }
  }

  /** A fresh token: reopen the stream with it from where it was (the server ends a stream at its token's expiry). */
  reauth(): void {
    const current = this.plan;
    if (current === null || current.plan.channels.length === 0 || this.finished) return;
    this.stream?.abort();
    this.stream = null;
    this.connect({ channels: current.plan.channels, cursor: this.position }, current.sink).catch((e: unknown) => {
      if (!(e instanceof RemoteError)) this.finish(0, `reconnecting the stream failed: ${(e as Error).message}`);
      else current.sink.refused(e);
    });
  }

  private finish(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.watchdog.stop();
    this.stream?.abort();
    this.stream = null;
    this.stop.abort();
    this.end({ transport: this.name, code, reason });
  }

  close(reason: string): void {
    this.finish(0, reason);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
