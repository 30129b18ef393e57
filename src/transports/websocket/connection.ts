import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { WebSocket, RawData } from "ws";
import type { TidingsBus } from "../../bus.js";
import type { Identity } from "../../core/identity.js";
import type { UpgradeRequest } from "./upgrade.js";
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
import type { PacedStream } from "../../core/paced-stream.js";
import { RohrpostRequestContext } from "./rohrpost-request-context.js";
import { ConnectionCredentials } from "./credentials.js";
import { FrameBudget } from "./frame-budget.js";
import { Subscriptions } from "./subscriptions.js";

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

/**
 * One WebSocket speaking rohrpost: reads request frames and dispatches them (built-ins
 * first, then the application's handlers), in order, and keeps the socket alive or closes
 * it. Its credentials (credentials.ts), subscriptions (subscriptions.ts) and frame budget
 * (frame-budget.ts) are parts of their own. All frames to the client go through one
 * outbox, so replies and pushes keep their order.
 */
export class Connection implements ConnectionApi {
  // Unique across instances (it names the claimer of commands); a flat string, unlike randomUUID's.
  readonly id = randomBytes(12).toString("base64url");
  private state: "open" | "closing" | "closed" = "open";
  /** Last time the peer showed life (any frame or pong). */
  lastSeen = Date.now();
  /** The heartbeat's slice for this connection (-1 until it joins). */
  heartbeatSlice = -1;
  private readonly credentials: ConnectionCredentials;
  private readonly subscriptions = new Subscriptions(this);
  private readonly frames: FrameBudget;
  private pending = 0;
  /** auth, subscribe, unsubscribe and publish run one after another, in arrival order. */
  private control: Promise<void> = Promise.resolve();
  private closeCallbacks: Array<() => void> | null = null;
  readonly outbox: Outbox;
  readonly db: string;
  readonly address: string;

  constructor(
    private readonly host: ConnectionHost,
    private readonly ws: WebSocket,
    socket: Duplex,
    up: UpgradeRequest,
  ) {
    this.db = up.db;
    this.address = up.address;
    this.credentials = new ConnectionCredentials(up.identity, up.token, this.lastSeen);
    this.frames = new FrameBudget(this.options.ws.maxFramesPerSecond);
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

  get identity(): Identity | null {
    return this.credentials.identity;
  }

  /** Channels subscribed. */
  get subscriptionCount(): number {
    return this.subscriptions.count;
  }

  // ---- incoming ------------------------------------------------------------------------------

  /** A frame from the client (the socket's message listener). */
  receive(data: RawData, isBinary: boolean): void {
    if (this.state !== "open") return;
    const now = Date.now();
    this.lastSeen = now;
    if (!this.frames.take(now)) {
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
    if (this.credentials.isCurrent(token)) return;
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
    for (const channel of this.subscriptions.channels()) {
      if (!(await this.bus.access.canRead(this.db, identity, channel))) dropped.push(channel);
    }
    if (this.state !== "open") return dropped;
    this.unsubscribe(dropped);
    this.credentials.replace(identity, token);
    return dropped;
  }

  /** Called about every second by the transport: closes once the credentials expired or never came. */
  checkExpiry(now: number): void {
    const reason = this.credentials.expiry(now, this.options.ws.authTimeoutMs);
    if (reason === null || this.state !== "open") return;
    if (reason === CLOSE.AUTH_TIMEOUT) this.bus.metrics.refused.inc({ reason: "auth_timeout" });
    this.close(reason);
  }

  // ---- subscriptions -------------------------------------------------------------------------

  /** See Subscriptions.add; nothing once the connection is closing. */
  subscribe(channels: readonly string[], after: string | null, started: (gap: boolean) => void): Promise<void> {
    if (this.state !== "open") return Promise.resolve();
    return this.subscriptions.add(channels, after, started);
  }

  unsubscribe(channels: readonly string[]): void {
    this.subscriptions.remove(channels);
  }

  /** A subscription's catch-up read failed after its reply: the client must resume elsewhere. */
  streamFailed(stream: PacedStream, error: unknown, replied: boolean): void {
    this.subscriptions.forget(stream);
    if (!replied) return;
    this.bus.logger.error({ err: error, connection: this.id }, "catch-up read failed");
    this.close(CLOSE.INTERNAL);
  }

  lowWater(): number {
    return Math.max(16 * 1024, Math.floor(this.options.ws.maxBufferedBytes / 4));
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
    this.subscriptions.stop();
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
    this.subscriptions.stop();
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

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
