import { parseServerFrame, PUSH_TYPE } from "../../protocol/rohrpost.js";
import { RemoteError } from "../types.js";
import type { WebSocketLike } from "../websocket-like.js";
import {
  AUTH_CODES,
  Watchdog,
  type BusMessage,
  type DisconnectInfo,
  type StreamPlan,
  type StreamSink,
  type Transport,
  type TransportContext,
} from "./transport.js";

const OPEN = 1;

interface Pending {
  resolve(data: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A frame the transport does not handle itself (commands): handed to the client. */
export type FrameListener = (frame: { id?: unknown; type?: unknown; data?: unknown; error?: unknown }) => void;

/**
 * The rohrpost wire. Authenticates with an `auth` frame right after the socket opens, so the
 * token never appears in a URL (browsers cannot set headers on a WebSocket). Reads one plan at
 * a time with one `subscribe` request: the server then pushes its channels in log order.
 * Sends an application `ping` every `heartbeatMs`; silence for `livenessMs` drops the socket.
 */
export class WebSocketTransport implements Transport {
  readonly name = "websocket" as const;
  readonly ended: Promise<DisconnectInfo>;
  private end!: (info: DisconnectInfo) => void;
  private socket: WebSocketLike | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sink: StreamSink | null = null;
  private subscribed: readonly string[] = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly watchdog: Watchdog;
  private finished = false;

  constructor(
    private readonly ctx: TransportContext,
    private readonly onFrame: FrameListener,
  ) {
    this.ended = new Promise((resolve) => (this.end = resolve));
    this.watchdog = new Watchdog(ctx.livenessMs, () =>
      this.drop(4000, `nothing heard for ${ctx.livenessMs} ms (half-open connection)`),
    );
  }

  async open(): Promise<void> {
    const Ctor = this.ctx.WebSocket;
    if (Ctor === undefined) throw new Error("No WebSocket implementation: pass one as the WebSocket option (Node 20: the ws package).");
    const base = this.ctx.url.replace(/^http/, "ws").replace(/\/+$/, "");
    const socket = new Ctor(`${base}${this.ctx.wsPath}`);
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => {
        // `close` follows with the code.
      };
      socket.onclose = (event) => {
        reject(new Error(`WebSocket refused or closed before opening (${event.code}${event.reason ? ` ${event.reason}` : ""})`));
        this.finish({ transport: this.name, code: event.code, reason: event.reason || "closed before opening" });
      };
      socket.onmessage = (event) => this.frame(event.data);
    });
    socket.onclose = (event) => this.finish({ transport: this.name, code: event.code, reason: event.reason || "connection closed" });
    this.watchdog.feed();
    this.heartbeat = setInterval(() => {
      this.request("ping", undefined, this.ctx.livenessMs).catch(() => {
        // the watchdog decides
      });
    }, this.ctx.heartbeatMs);
    (this.heartbeat as { unref?: () => void }).unref?.();
    try {
      await this.authenticate(await this.ctx.tokens.current());
    } catch (e) {
      if (!(e instanceof RemoteError) || !AUTH_CODES.has(e.code) || !this.ctx.tokens.canRefresh) {
        this.close("authentication failed");
        throw e;
      }
      // Refused: ask for a fresh token once, on this same socket.
      try {
        await this.authenticate(await this.ctx.tokens.refresh());
      } catch (e2) {
        this.close("authentication failed");
        throw e2;
      }
    }
  }

  private async authenticate(token: string): Promise<void> {
    await this.request("auth", { token }, this.ctx.livenessMs);
  }

  reauth(token: string): void {
    this.authenticate(token).catch(() => {
      // The server keeps the old identity until it expires, then closes with 4001 and we reconnect.
    });
  }

  async sync(plan: StreamPlan, sink: StreamSink): Promise<void> {
    if (this.subscribed.length > 0) {
      const old = this.subscribed;
      this.subscribed = [];
      await this.request("unsubscribe", { channels: old }, this.ctx.livenessMs);
    }
    // After the unsubscribe answer no push of the old plan comes; the new one's come after its answer.
    this.sink = sink;
    if (plan.channels.length === 0) return;
    const answer = (await this.request(
      "subscribe",
      { channels: plan.channels, last_message: plan.cursor },
      this.ctx.livenessMs,
    )) as { gap?: unknown } | undefined;
    this.subscribed = plan.channels;
    if (answer?.gap === true) sink.gap(plan.channels);
  }

  /** A request answered by the server (`call`, `publish`, command registration). */
  request(type: string, data: unknown, timeoutMs: number): Promise<unknown> {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN) return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new Error(`No answer to ${type} within ${timeoutMs} ms.`));
            }, timeoutMs)
          : undefined;
      (timer as { unref?: () => void } | undefined)?.unref?.();
      this.pending.set(id, { resolve, reject, timer });
      socket.send(JSON.stringify(data === undefined ? { id, type } : { id, type, data }));
    });
  }

  /** Sends a frame that gets no answer (command-started, command-result). False when not connected. */
  send(frame: unknown): boolean {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  private frame(raw: unknown): void {
    if (this.finished) return;
    this.watchdog.feed();
    const frame = parseServerFrame(raw);
    if (frame === null) return;
    if (frame.type === PUSH_TYPE) {
      this.push(frame.data);
      return;
    }
    if (typeof frame.id === "number" && this.pending.has(frame.id)) {
      const p = this.pending.get(frame.id)!;
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      if (typeof frame.error === "string") p.reject(RemoteError.from(frame.error, frame.data));
      else p.resolve(frame.data);
      return;
    }
    this.onFrame(frame);
  }

  private push(data: unknown): void {
    const sink = this.sink;
    if (sink === null || typeof data !== "object" || data === null) return;
    const d = data as { group?: unknown; message?: unknown; gap?: unknown };
    if (typeof d.group !== "string") return;
    if (d.gap === true) sink.gap([d.group]);
    const m = d.message as BusMessage | undefined;
    if (typeof m === "object" && m !== null && typeof m.message_id === "string") sink.message(d.group, m);
  }

  private drop(code: number, reason: string): void {
    try {
      this.socket?.close(code === 4000 ? 4000 : 1000, reason.slice(0, 120));
    } catch {
      // already closing
    }
    this.finish({ transport: this.name, code, reason });
  }

  private finish(info: DisconnectInfo): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.heartbeat);
    this.watchdog.stop();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`connection closed (${info.code} ${info.reason})`));
    }
    this.pending.clear();
    this.socket = null;
    this.end(info);
  }

  close(reason: string): void {
    const socket = this.socket;
    this.finish({ transport: this.name, code: 1000, reason });
    try {
      socket?.close(1000, reason.slice(0, 120));
    } catch {
      // already closed
    }
  }
}
