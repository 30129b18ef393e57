import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket, RawData } from "ws";
import type { Bus } from "../../core/bus.js";
import type { Identity } from "../../core/identity.js";
import type { TidingsOptions } from "../../options.js";
import type { ServerContext } from "../http/context.js";
import { TidingsError, toTidingsError, type ErrorCode } from "../../errors.js";
import {
  encodeError,
  encodeFrame,
  encodeGapPush,
  encodePush,
  isFrameError,
  parseRequest,
  type RohrpostRequest,
} from "../../protocol/rohrpost.js";
import { BUILTINS } from "./builtins.js";
import { CLOSE, type CloseReason } from "./close-codes.js";
import { frameText, pushFrame } from "./frame.js";
import { Outbox, type FlushScheduler } from "./outbox.js";
import { PacedStream, type StreamSink } from "./paced-stream.js";
import { RequestContext } from "./request-context.js";

/** What a connection needs from the transport that accepted it. */
export interface ConnectionHost {
  readonly server: ServerContext;
  readonly scheduler: FlushScheduler;
  /** The connection is gone (closed or terminated). */
  connectionClosed(conn: Connection, code: number, reason: string): void;
  /** The connection's unsent data passed ws.maxBufferedBytes; it is being closed with 4008. */
  connectionOverflowed(conn: Connection, bufferedBytes: number): void;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const NOOP = (): void => {};

/**
 * One WebSocket speaking rohrpost: reads request frames, answers them (built-ins first,
 * then the application's handlers), and pushes the messages of its subscriptions. All
 * frames to the client go through one outbox, so replies and pushes keep their order.
 */
export class Connection {
  readonly id = randomUUID();
  identity: Identity | null;
  /** The token the identity came from, so a repeated auth_jwt is not verified again. */
  private token: string | null;
  private state: "open" | "closing" | "closed" = "open";
  /** Last time the peer showed life (any frame or pong). */
  lastSeen = Date.now();
  private frameWindowStart = 0;
  private frameCount = 0;
  private pending = 0;
  /** auth, subscribe, unsubscribe and publish run one after another, in arrival order. */
  private control: Promise<void> = Promise.resolve();
  /** Subscribed channels, each with the stream that delivers it (a channel is in one stream). */
  private readonly subscriptions = new Map<string, PacedStream>();
  private closeCallbacks: Array<() => void> | null = null;
  private expiryTimer: NodeJS.Timeout | undefined;
  readonly outbox: Outbox;

  constructor(
    private readonly host: ConnectionHost,
    private readonly ws: WebSocket,
    socket: Duplex,
    readonly db: string,
    identity: Identity | null,
    token: string | null,
  ) {
    this.identity = identity;
    this.token = token;
    this.outbox = new Outbox(socket, host.scheduler, this.options.ws.maxBufferedBytes, (bytes) => this.overflow(bytes));
    ws.on("message", (data, isBinary) => this.receive(data, isBinary));
    ws.on("pong", () => (this.lastSeen = Date.now()));
    ws.on("ping", () => (this.lastSeen = Date.now()));
    ws.on("error", (e) => this.bus.logger.debug({ err: e, connection: this.id }, "websocket error"));
    ws.once("close", (code, reason) => this.closed(code, reason.toString()));
    this.armExpiry();
  }

  get server(): ServerContext {
    return this.host.server;
  }

  get bus(): Bus {
    return this.host.server.bus;
  }

  get options(): TidingsOptions {
    return this.host.server.options;
  }

  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  // ---- incoming ------------------------------------------------------------------------------

  private receive(data: RawData, isBinary: boolean): void {
    if (this.state !== "open") return;
    const now = Date.now();
    this.lastSeen = now;
    if (now - this.frameWindowStart >= 1000) {
      this.frameWindowStart = now;
      this.frameCount = 0;
    }
    if (++this.frameCount > this.options.ws.maxFramesPerSecond) {
      this.close(CLOSE.RATE_LIMIT);
      return;
    }
    if (isBinary) {
      this.sendError({}, "Binary frames are not supported: send JSON text frames.", "TIDINGS_ERR_FRAME_INVALID");
      return;
    }
    const parsed = parseRequest(toBuffer(data).toString("utf8"));
    if (isFrameError(parsed)) {
      this.sendError(parsed, parsed.error, "TIDINGS_ERR_FRAME_INVALID");
      return;
    }
    this.dispatch(parsed);
  }

  private dispatch(req: RohrpostRequest): void {
    // Answered at once, whatever else is running: clients use it to detect dead connections.
    if (req.type === "ping") {
      this.sendText(encodeFrame("pong", req.id, req.hasData ? req.data : undefined));
      return;
    }
    const builtin = BUILTINS.get(req.type);
    const handler = builtin === undefined ? this.bus.handlers.get(req.type) : undefined;
    if (builtin === undefined && handler === undefined) {
      this.sendError(req, `Unknown message type '${req.type}'.`, "TIDINGS_ERR_HANDLER_UNKNOWN");
      return;
    }
    if (this.pending >= this.options.ws.maxPendingRequests) {
      this.sendError(req, `At most ${this.options.ws.maxPendingRequests} requests may be pending; wait for replies.`, "TIDINGS_ERR_LIMIT_RATE");
      return;
    }
    this.pending++;
    const ctx = new RequestContext(this, req);
    if (builtin !== undefined) {
      this.control = this.control.then(() => this.run(ctx, () => builtin(this, ctx), false));
      return;
    }
    // An application handler starts after the control requests received before it (an auth
    // just sent applies to it) but does not hold back those received after it.
    const gate = this.control;
    if (req.authJwt !== null) {
      const token = req.authJwt;
      this.control = gate.then(() => this.adoptToken(token).then(NOOP, NOOP));
    }
    void gate.then(() => this.run(ctx, () => handler!(ctx, req), true));
  }

  private async run(ctx: RequestContext, fn: () => unknown, application: boolean): Promise<void> {
    try {
      if (this.state !== "open") return;
      if (ctx.request.authJwt !== null) await this.adoptToken(ctx.request.authJwt);
      const result = await fn();
      if (!ctx.answered) ctx.reply(result);
    } catch (e) {
      if (!ctx.answered) ctx.fail(this.asTidingsError(e, ctx.request.type, application));
    } finally {
      this.pending--;
    }
  }

  private asTidingsError(e: unknown, type: string, application: boolean): TidingsError {
    if (e instanceof TidingsError) {
      if (e.status >= 500) this.bus.logger.error({ err: e.cause ?? e, type, connection: this.id }, "websocket request failed");
      return e;
    }
    this.bus.logger.error({ err: e, type, connection: this.id }, application ? "websocket handler threw" : "websocket request failed");
    if (application) return new TidingsError("TIDINGS_ERR_HANDLER_FAILED", `The handler of '${type}' failed.`, { cause: e });
    return toTidingsError(e);
  }

  // ---- identity ------------------------------------------------------------------------------

  private async adoptToken(token: string): Promise<void> {
    if (token === this.token && this.identity !== null) return;
    const identity = await this.server.authenticator.fromToken(this.db, token, "jwt");
    await this.adopt(identity, token);
  }

  /**
   * Makes `identity` the connection's (first auth, or a refreshed token). A connection stays
   * one user's: another user's credentials are refused. Channels the new credentials may
   * not read are unsubscribed and returned.
   */
  async adopt(identity: Identity, token: string | null): Promise<string[]> {
    const current = this.identity;
    if (current !== null && current.user !== identity.user) {
      throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "This connection belongs to another user; open a new connection for this one.");
    }
    const dropped: string[] = [];
    for (const channel of [...this.subscriptions.keys()]) {
      if (!(await this.bus.access.canRead(this.db, identity, channel))) dropped.push(channel);
    }
    if (this.state !== "open") return dropped;
    this.unsubscribe(dropped);
    this.identity = identity;
    this.token = token;
    this.armExpiry();
    return dropped;
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const at = this.identity?.expiresAt;
    if (at === null || at === undefined || this.state !== "open") return;
    this.expiryTimer = setTimeout(
      () => {
        const expiresAt = this.identity?.expiresAt;
        if (expiresAt !== null && expiresAt !== undefined && expiresAt <= Date.now()) this.close(CLOSE.AUTH_EXPIRED);
        else this.armExpiry();
      },
      Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS),
    );
    this.expiryTimer.unref();
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /**
   * Subscribes channels not yet subscribed (no channel is delivered twice). `started` runs
   * once the first read is done, before any push, with whether a gap was found; the promise
   * settles then too.
   */
  subscribe(channels: readonly string[], after: string | null, started: (gap: boolean) => void): Promise<void> {
    if (this.state !== "open") return Promise.resolve();
    const fresh = channels.filter((c) => !this.subscriptions.has(c));
    if (fresh.length === 0) {
      started(false);
      return Promise.resolve();
    }
    const max = this.options.ws.maxSubscriptions;
    if (this.subscriptions.size + fresh.length > max) {
      throw new TidingsError("TIDINGS_ERR_CHANNEL_TOO_MANY", `At most ${max} channels per connection.`, { details: { max } });
    }
    const log = this.bus.log(this.db);
    return new Promise<void>((resolve, reject) => {
      let begun = false;
      const outbox = this.outbox;
      const sink: StreamSink = {
        start: (gap) => {
          begun = true;
          started(gap);
          resolve();
        },
        message: (m, gap) => outbox.push(gap ? frameText(encodePush(m.channel, m.id, m.json, true)) : pushFrame(m), true),
        gap: (chs) => {
          for (const c of chs) outbox.push(frameText(encodeGapPush(c)), false);
        },
        flush: NOOP,
        writable: () => outbox.writable(this.lowWater()),
        error: (e) => {
          this.forget(stream);
          if (!begun) {
            begun = true;
            reject(e);
            return;
          }
          this.bus.logger.error({ err: e, connection: this.id }, "catch-up read failed");
          this.close(CLOSE.INTERNAL);
        },
        // Unsubscribed (or closed) before the first read came back: the request is done.
        end: () => {
          if (begun) return;
          begun = true;
          resolve();
        },
      };
      const stream = new PacedStream(log, new Set(fresh), after, sink, this.pageSize());
      for (const c of fresh) this.subscriptions.set(c, stream);
    });
  }

  unsubscribe(channels: readonly string[]): void {
    const byStream = new Map<PacedStream, string[]>();
    for (const c of channels) {
      const stream = this.subscriptions.get(c);
      if (stream === undefined) continue;
      this.subscriptions.delete(c);
      const list = byStream.get(stream);
      if (list === undefined) byStream.set(stream, [c]);
      else list.push(c);
    }
    for (const [stream, list] of byStream) stream.removeChannels(list);
  }

  private forget(stream: PacedStream): void {
    for (const c of stream.channels) if (this.subscriptions.get(c) === stream) this.subscriptions.delete(c);
  }

  /** Catch-up pages sized so that one page of the largest messages stays under half the send cap. */
  private pageSize(): number {
    const perMessage = this.options.maxMessageBytes + 512;
    return Math.max(8, Math.min(500, Math.floor(this.options.ws.maxBufferedBytes / 2 / perMessage)));
  }

  private lowWater(): number {
    return Math.max(16 * 1024, Math.floor(this.options.ws.maxBufferedBytes / 4));
  }

  private stopStreams(): void {
    const streams = new Set(this.subscriptions.values());
    this.subscriptions.clear();
    for (const s of streams) s.close();
  }

  // ---- outgoing ------------------------------------------------------------------------------

  sendText(text: string): void {
    if (this.state !== "open") return;
    this.outbox.push(frameText(text), false);
  }

  private sendError(to: { id?: unknown; type?: string }, message: string, code: ErrorCode, details?: Record<string, unknown>): void {
    this.bus.metrics.errors.inc({ code });
    this.sendText(encodeError(to, message, code, details));
  }

  // ---- liveness and closing --------------------------------------------------------------------

  /** Called every ping interval: drops a peer silent for two intervals, else pings it. */
  heartbeat(now: number, intervalMs: number): void {
    if (this.state === "closed") return;
    if (now - this.lastSeen > 2 * intervalMs) {
      this.ws.terminate();
      return;
    }
    if (this.state === "open") this.ws.ping();
  }

  onClose(callback: () => void): void {
    if (this.state === "closed") {
      queueMicrotask(() => this.runCallback(callback));
      return;
    }
    (this.closeCallbacks ??= []).push(callback);
  }

  /** Closes with a documented code; what is queued is sent first. */
  close(reason: CloseReason): void {
    if (this.state !== "open") return;
    this.state = "closing";
    this.stopStreams();
    clearTimeout(this.expiryTimer);
    this.outbox.finish();
    this.ws.close(reason.code, reason.reason);
  }

  private overflow(bufferedBytes: number): void {
    if (this.state !== "open") return;
    this.host.connectionOverflowed(this, bufferedBytes);
    this.close(CLOSE.SLOW_CONSUMER);
  }

  private closed(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopStreams();
    this.outbox.stop();
    clearTimeout(this.expiryTimer);
    const callbacks = this.closeCallbacks ?? [];
    this.closeCallbacks = null;
    for (const cb of callbacks) this.runCallback(cb);
    this.host.connectionClosed(this, code, reason);
  }

  private runCallback(cb: () => void): void {
    try {
      cb();
    } catch (e) {
      this.bus.logger.error({ err: e, connection: this.id }, "onClose callback failed");
    }
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
