import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket, RawData } from "ws";
import type { TidingsBus } from "../../bus.js";
import type { Identity } from "../../core/identity.js";
import type { TidingsOptions } from "../../options.js";
import type { ServerContext } from "../http/context.js";
import { TidingsError, toTidingsError, type ErrorCode } from "../../errors.js";
import {
  encodeError,
  encodeFrame,
  isFrameError,
  parseRequest,
  type RohrpostRequest,
} from "../../protocol/rohrpost.js";
import { BUILTINS } from "./builtins.js";
import type { ConnectionApi } from "./connection-api.js";
import { CLOSE, type CloseReason } from "./close-codes.js";
import { frameText } from "./frame.js";
import { Outbox, type FlushScheduler } from "./outbox.js";
import { PacedStream } from "../../core/paced-stream.js";
import { SubscriptionSink } from "./subscription-sink.js";
import { RohrpostRequestContext } from "./rohrpost-request-context.js";

/** What a connection needs from the transport that accepted it. */
export interface ConnectionHost {
  readonly server: ServerContext;
  readonly scheduler: FlushScheduler;
  /** The connection is gone (closed or terminated). */
  connectionClosed(conn: Connection, code: number, reason: string): void;
  /** The connection's unsent data passed ws.maxBufferedBytes; it is being closed with 4008. */
  connectionOverflowed(conn: Connection, bufferedBytes: number): void;
}

function noop(): void {}

// The socket's listeners are shared functions that find their connection on the socket:
// thousands of connections, no closures per connection.
const kConnection = Symbol("tidings.connection");
type TaggedSocket = WebSocket & { [kConnection]: Connection };

function connectionOf(ws: WebSocket): Connection {
  return (ws as TaggedSocket)[kConnection];
}
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  connectionOf(this).receive(data, isBinary);
}
function onAlive(this: WebSocket): void {
  connectionOf(this).lastSeen = Date.now();
}
function onSocketError(this: WebSocket, e: Error): void {
  const conn = connectionOf(this);
  conn.bus.logger.debug({ err: e, connection: conn.id }, "websocket error");
}
function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  connectionOf(this).closed(code, reason.toString());
}

/** Only this tail of a token is kept, to recognise a repeated auth_jwt without verifying it again. */
const TOKEN_TAG_LENGTH = 12;

/**
 * One WebSocket speaking rohrpost: reads request frames, answers them (built-ins first,
 * then the application's handlers), and pushes the messages of its subscriptions. All
 * frames to the client go through one outbox, so replies and pushes keep their order.
 */
export class Connection implements ConnectionApi {
  // Unique across instances (it names the claimer of commands); a flat string, unlike randomUUID's.
  readonly id = randomBytes(12).toString("base64url");
  identity: Identity | null;
  /**
   * The end of the token the identity came from (part of its signature): a repeated auth_jwt
   * is not verified again. A different token with the same tail would keep the identity as
   * it is, which grants nothing.
   */
  private tokenTag: string | null;
  private state: "open" | "closing" | "closed" = "open";
  /** Last time the peer showed life (any frame or pong). */
  lastSeen = Date.now();
  private readonly openedAt = this.lastSeen;
  /** The heartbeat's slice for this connection (-1 until it joins). */
  heartbeatSlice = -1;
  private frameWindowStart = 0;
  private frameCount = 0;
  private pending = 0;
  /** auth, subscribe, unsubscribe and publish run one after another, in arrival order. */
  private control: Promise<void> = Promise.resolve();
  /** One stream per subscribe request; a channel is in one stream at most. */
  private streams: PacedStream[] = [];
  private channelCount = 0;
  private closeCallbacks: Array<() => void> | null = null;
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
    this.tokenTag = tag(token);
    this.outbox = new Outbox(socket, host.scheduler, this.options.ws.maxBufferedBytes, this);
    (ws as TaggedSocket)[kConnection] = this;
    ws.on("message", onMessage);
    ws.on("pong", onAlive);
    ws.on("ping", onAlive);
    ws.on("error", onSocketError);
    ws.on("close", onSocketClose); // emitted once; `on` spares the wrapper `once` allocates
  }

  get server(): ServerContext {
    return this.host.server;
  }

  get bus(): TidingsBus {
    return this.host.server.bus;
  }

  get options(): TidingsOptions {
    return this.host.server.options;
  }

  /** Channels subscribed. */
  get subscriptionCount(): number {
    return this.channelCount;
  }

  // ---- incoming ------------------------------------------------------------------------------

  /** A frame from the client (the socket's message listener). */
  receive(data: RawData, isBinary: boolean): void {
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
    const ctx = new RohrpostRequestContext(this, req);
    if (builtin !== undefined) {
      this.control = this.control.then(() => this.run(ctx, () => builtin(this, ctx), false));
      return;
    }
    // An application handler starts after the control requests received before it (an auth
    // just sent applies to it) but does not hold back those received after it.
    const gate = this.control;
    if (req.authJwt !== null) {
      const token = req.authJwt;
      this.control = gate.then(() => this.adoptToken(token).then(noop, noop));
    }
    void gate.then(() => this.run(ctx, () => handler!(ctx, req), true));
  }

  private async run(ctx: RohrpostRequestContext, fn: () => unknown, application: boolean): Promise<void> {
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
    if (this.identity !== null && tag(token) === this.tokenTag) return;
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
    for (const channel of this.channels()) {
      if (!(await this.bus.access.canRead(this.db, identity, channel))) dropped.push(channel);
    }
    if (this.state !== "open") return dropped;
    this.unsubscribe(dropped);
    this.identity = identity;
    this.tokenTag = tag(token);
    return dropped;
  }

  /**
   * Called about every second by the transport: closes once the credentials have expired,
   * or when the socket opened without credentials and did not authenticate in time (an
   * anonymous socket costs a descriptor and buffers; it may only ping).
   */
  checkExpiry(now: number): void {
    if (this.identity === null) {
      if (now - this.openedAt >= this.options.ws.authTimeoutMs && this.state === "open") {
        this.bus.metrics.refused.inc({ reason: "auth_timeout" });
        this.close(CLOSE.AUTH_TIMEOUT);
      }
      return;
    }
    const at = this.identity.expiresAt;
    if (at !== null && at <= now) this.close(CLOSE.AUTH_EXPIRED);
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /**
   * Subscribes channels not yet subscribed (no channel is delivered twice). `started` runs
   * once the first read is done, before any push, with whether a gap was found; the promise
   * settles then too.
   */
  subscribe(channels: readonly string[], after: string | null, started: (gap: boolean) => void): Promise<void> {
    if (this.state !== "open") return Promise.resolve();
    const fresh = channels.filter((c) => this.streamOf(c) === undefined);
    if (fresh.length === 0) {
      started(false);
      return Promise.resolve();
    }
    const max = this.options.ws.maxSubscriptions;
    if (this.channelCount + fresh.length > max) {
      throw new TidingsError("TIDINGS_ERR_CHANNEL_TOO_MANY", `At most ${max} channels per connection.`, { details: { max } });
    }
    const log = this.bus.log(this.db);
    return new Promise<void>((resolve, reject) => {
      const sink = new SubscriptionSink(this, { started, resolve, reject });
      const stream = new PacedStream(log, new Set(fresh), after, sink, this.pageSize());
      sink.stream = stream;
      this.streams.push(stream);
      this.channelCount += fresh.length;
    });
  }

  /** A subscription's catch-up read failed after its reply: the client must resume elsewhere. */
  streamFailed(stream: PacedStream, error: unknown, replied: boolean): void {
    this.forget(stream);
    if (!replied) return;
    this.bus.logger.error({ err: error, connection: this.id }, "catch-up read failed");
    this.close(CLOSE.INTERNAL);
  }

  unsubscribe(channels: readonly string[]): void {
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

  /** The stream delivering `channel`. A scan: a connection has few streams (at most ws.maxSubscriptions). */
  private streamOf(channel: string): PacedStream | undefined {
    for (const s of this.streams) if (s.channels.has(channel)) return s;
    return undefined;
  }

  private channels(): string[] {
    const out: string[] = [];
    for (const s of this.streams) for (const c of s.channels) out.push(c);
    return out;
  }

  private forget(stream: PacedStream): void {
    const i = this.streams.indexOf(stream);
    if (i < 0) return;
    this.streams.splice(i, 1);
    this.channelCount -= stream.channels.size;
  }

  /** Catch-up pages sized so that one page of the largest messages stays under half the send cap. */
  private pageSize(): number {
    const perMessage = this.options.maxMessageBytes + 512;
    return Math.max(8, Math.min(500, Math.floor(this.options.ws.maxBufferedBytes / 2 / perMessage)));
  }

  lowWater(): number {
    return Math.max(16 * 1024, Math.floor(this.options.ws.maxBufferedBytes / 4));
  }

  private stopStreams(): void {
    const streams = this.streams;
    this.streams = [];
    this.channelCount = 0;
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
    this.outbox.finish();
    this.ws.close(reason.code, reason.reason);
  }

  /** The outbox passed ws.maxBufferedBytes: the client is not reading. */
  overflowed(bufferedBytes: number): void {
    if (this.state !== "open") return;
    this.host.connectionOverflowed(this, bufferedBytes);
    this.close(CLOSE.SLOW_CONSUMER);
  }

  /** The socket is gone (the socket's close listener). */
  closed(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopStreams();
    this.outbox.stop();
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

/** A short copy of a token's end (short slices are copied, so the request URL is not kept alive). */
function tag(token: string | null): string | null {
  return token === null ? null : token.slice(-TOKEN_TAG_LENGTH);
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
