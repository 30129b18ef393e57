import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type ServerOptions } from "ws";
import type { ServerContext } from "../http/context.js";
import { BUILTIN_TYPES } from "../../protocol/rohrpost.js";
import { TidingsError, toTidingsError } from "../../errors.js";
import { CLOSE } from "./close-codes.js";
import { Connection, type ConnectionHost } from "./connection.js";
import { FlushScheduler } from "./outbox.js";
import { Heartbeat } from "./heartbeat.js";
import { checkUpgrade, rejectUpgrade, type UpgradeRequest } from "./upgrade.js";

export interface WebSocketEvents {
  "connection:open": [info: { id: string; db: string; user: string | null }];
  "connection:close": [info: { id: string; code: number; reason: string }];
  /** A client stopped reading and its unsent data passed ws.maxBufferedBytes (closed with 4008). */
  "connection:overflow": [info: { id: string; bufferedBytes: number }];
}

/** How long a closing handshake may take before the socket is destroyed. */
const CLOSE_TIMEOUT_MS = 5_000;
/** How often expired credentials and unauthenticated sockets are looked for (closed at most this late). */
const EXPIRY_SWEEP_MS = 1_000;

/**
 * The WebSocket transport: `GET /<db>/ws` upgrades to rohrpost connections. Holds the
 * connections, the per-turn write scheduler and the heartbeat; closes every socket with
 * 1001 when the server drains.
 */
export class WebSocketTransport extends EventEmitter<WebSocketEvents> implements ConnectionHost {
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  readonly scheduler: FlushScheduler;
  private readonly heartbeat: Heartbeat<Connection>;
  private readonly expiryTimer: NodeJS.Timeout;
  private stopped = false;

  constructor(readonly server: ServerContext) {
    super();
    const { ws: opts } = server.options;
    server.bus.handlers.reserve(BUILTIN_TYPES);
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      perMessageDeflate: false,
      maxPayload: opts.maxPayload,
      clientTracking: false,
      closeTimeout: CLOSE_TIMEOUT_MS,
    };
    this.wss = new WebSocketServer(wsOptions);
    this.scheduler = new FlushScheduler((n) => (server.bus.metrics.deliveredVia("websocket").count += n));
    this.heartbeat = new Heartbeat(opts.pingIntervalMs);
    // One sweep for every connection's credentials rather than a timer per connection.
    this.expiryTimer = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.checkExpiry(now);
    }, Math.min(EXPIRY_SWEEP_MS, opts.authTimeoutMs));
    this.expiryTimer.unref();
    server.onDrain(() => this.shutdown());
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** The HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.upgrade(req, socket, head);
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Until ws owns the socket, a reset while credentials are checked must not crash anything.
    const onError = (): void => void socket.destroy();
    socket.on("error", onError);
    let up: UpgradeRequest;
    try {
      up = await checkUpgrade(this.server, req);
      if (this.stopped) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
    } catch (e) {
      const err = toTidingsError(e);
      this.server.bus.metrics.errors.inc({ code: err.code });
      if (err.status >= 500 && err.code !== "TIDINGS_ERR_SHUTTING_DOWN" && err.code !== "TIDINGS_ERR_DB_BUS_DISABLED") {
        this.server.bus.logger.error({ err: err.cause ?? err, url: req.url }, "websocket upgrade failed");
      }
      rejectUpgrade(socket, err);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off("error", onError);
      if (this.stopped) {
        ws.close(CLOSE.SHUTDOWN.code, CLOSE.SHUTDOWN.reason);
        return;
      }
      const conn = new Connection(this, ws, socket, up);
      this.connections.add(conn);
      this.heartbeat.add(conn);
      this.server.bus.metrics.connections.inc({ transport: "websocket" });
      this.server.bus.logger.debug({ connection: conn.id, db: up.db, user: up.identity?.user ?? null }, "websocket open");
      this.emit("connection:open", { id: conn.id, db: up.db, user: up.identity?.user ?? null });
    });
  }

  connectionClosed(conn: Connection, code: number, reason: string): void {
    if (!this.connections.delete(conn)) return;
    this.heartbeat.delete(conn);
    this.server.bus.metrics.connections.dec({ transport: "websocket" });
    this.server.bus.logger.debug({ connection: conn.id, code, reason }, "websocket closed");
    this.emit("connection:close", { id: conn.id, code, reason });
  }

  connectionOverflowed(conn: Connection, bufferedBytes: number): void {
    this.server.bus.logger.warn({ connection: conn.id, bufferedBytes }, "websocket client not reading: closed with 4008");
    this.emit("connection:overflow", { id: conn.id, bufferedBytes });
  }

  /** Draining: refuse new upgrades, close every connection with 1001 so clients resume elsewhere. */
  shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.heartbeat.close();
    clearInterval(this.expiryTimer);
    for (const c of this.connections) c.close(CLOSE.SHUTDOWN);
    this.scheduler.close();
  }
}

export { CLOSE } from "./close-codes.js";
