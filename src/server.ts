import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TidingsBus, type BusInput } from "./bus.js";
import { Authenticator } from "./auth/authenticate.js";
import { loadSecret } from "./auth/secret.js";
import type { SessionVerifier } from "./auth/tryton-session.js";
import { TrytonPostgresVerifier } from "./auth/tryton-pg-verifier.js";
import { clientAddress } from "./transports/http/client-address.js";
import { TrytonIngest } from "./tryton/ingest.js";
import { TidingsError, toTidingsError } from "./errors.js";
import type { ServerContext } from "./transports/http/context.js";
import { PollLimiter } from "./transports/http/poll-limiter.js";
import { HttpRequestContext, Router } from "./transports/http/router.js";
import { httpRoutes } from "./transports/http/routes.js";
import { applyCors, handlePreflight } from "./transports/http/cors.js";
import { sendError } from "./transports/http/respond.js";
import { redactStoreUrl } from "./stores/open-store.js";
import { listenFailed } from "./transports/http/listen-errors.js";
import { WebSocketTransport } from "./transports/websocket/index.js";
import { registerCommandHandlers } from "./transports/websocket/command-handlers.js";
import { ConnectionGuard, isRefused } from "./transports/http/connection-guard.js";
import { UserBytes } from "./transports/http/user-bytes.js";
import { BodyGuard } from "./transports/http/body-guard.js";
import { connectionCap, connectionCapProblem, readFileLimit, type FileLimit } from "./fd-limit.js";

/** "compiled" when this module runs from dist/ (plain JavaScript), "source" under tsx. */
const RUNTIME = import.meta.url.endsWith(".js") ? "compiled" : "source";

export interface ServerInput extends BusInput {
  /** Checks Tryton `Session` credentials; without one, only tokens and cookies are accepted. */
  readonly sessionVerifier?: SessionVerifier;
}

/**
 * A running tidings server: the bus plus its HTTP routes and transports on one port.
 * `listen()` starts it, `close()` drains: stops accepting, answers parked polls empty,
 * closes sockets with 1001, and loses nothing that was accepted.
 */
export class TidingsServer implements ServerContext {
  readonly http: Server;
  readonly authenticator: Authenticator;
  readonly polls: PollLimiter;
  readonly unsent: UserBytes;
  readonly bodies: BodyGuard;
  /** The HTTP route table (src/transports/http/routes.ts), also served as /openapi.json. */
  readonly router: Router;
  /** rohrpost over WebSocket at `GET /<db>/ws`. */
  readonly websocket: WebSocketTransport;
  private readonly drainCallbacks = new Set<() => void>();
  private readonly sockets = new Set<Socket>();
  /** Connection caps (total, per address) and the pipelining cap of every connection. */
  readonly connectionGuard: ConnectionGuard;
  /** The open-files limit read at construction: the connection cap stays under it. */
  private readonly files: FileLimit | null;
  private state: "idle" | "listening" | "draining" | "closed" = "idle";
  /** The verifier built from `trytonSessions`, closed with the server (one passed in is the caller's). */
  private ownedVerifier: TrytonPostgresVerifier | undefined;
  /** With `tryton.url`: what trytond publishes in the served databases, appended to their logs. */
  tryton: TrytonIngest | undefined;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly bus: TidingsBus,
    secret: string,
    sessionVerifier: SessionVerifier | undefined,
  ) {
    const { options } = bus;
    this.authenticator = new Authenticator({
      secret,
      sessionCookie: options.sessionCookie,
      sessionVerifier,
      allowedOrigins: options.corsOrigins,
    });
    this.polls = new PollLimiter(options.maxParkedPolls, options.maxParkedPollsPerUser);
    this.unsent = new UserBytes(options.maxUnsentBytesPerUser);
    this.bodies = new BodyGuard(options.bodyTimeoutMs, options.maxBodyBytesPerUser, (reason) => bus.metrics.refused.inc({ reason }));
    this.files = readFileLimit();
    this.connectionGuard = new ConnectionGuard(
      { ...options, maxConnections: connectionCap(options.maxConnections, this.files) },
      (reason) => bus.metrics.refused.inc({ reason }),
    );
    this.http = createHttpServer(
      {
        // Node checks header/request timeouts only this often: keep slow-header clients short.
        connectionsCheckingInterval: 2_000,
        headersTimeout: 10_000,
        // Long-polls legitimately last the poll timeout; cap the whole request a bit above it.
        requestTimeout: options.pollTimeoutMs + 30_000,
        keepAliveTimeout: 65_000,
      },
      (req, res) => this.handle(req, res),
    );
    this.http.on("connection", (socket: Socket) => {
      if (!this.connectionGuard.admit(socket)) return;
      this.sockets.add(socket);
      bus.metrics.connections.inc({ transport: "http" });
      socket.once("close", () => {
        this.sockets.delete(socket);
        bus.metrics.connections.dec({ transport: "http" });
      });
    });
    bus.metrics.unsentBytes = () => this.unsentHttpBytes();
    this.router = new Router(httpRoutes(this));
    registerCommandHandlers(bus);
    // A server sweeps deadlines of every configured database (commands of other instances).
    bus.commands.sweepConfiguredDatabases();
    // Upgrades bypass the router; the transport closes its sockets with 1001 on drain.
    this.websocket = new WebSocketTransport(this);
    this.http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!isRefused(socket)) this.websocket.handleUpgrade(req, socket, head);
    });
  }

  static async create(input: ServerInput = {}): Promise<TidingsServer> {
    const bus = await TidingsBus.create(input);
    try {
      const secret = loadSecret(bus.options.secret, bus.options.dataDir, true)!;
      const tryton = bus.options.trytonSessions;
      const owned = input.sessionVerifier === undefined && tryton !== undefined ? new TrytonPostgresVerifier(tryton) : undefined;
      const server = new TidingsServer(bus, secret, input.sessionVerifier ?? owned);
      server.ownedVerifier = owned;
      const t = bus.options.tryton;
      if (t !== undefined) {
        const databases = Object.entries(bus.options.databases).filter(([, o]) => o.bus).map(([name]) => name);
        server.tryton = new TrytonIngest(bus, { url: t.url, databases, pollIntervalMs: t.pollIntervalMs }, bus.logger);
        server.tryton.start();
      }
      return server;
    } catch (e) {
      await bus.close();
      throw e;
    }
  }

  get options() {
    return this.bus.options;
  }

  /** Bytes written to this server's sockets and not yet handed to the kernel (clients not reading). */
  unsentHttpBytes(): number {
    let n = 0;
    for (const s of this.sockets) n += s.writableLength;
    return n;
  }

  get draining(): boolean {
    return this.state === "draining" || this.state === "closed";
  }

  authenticate(db: string, req: IncomingMessage, queryToken?: string | null) {
    return this.authenticator.fromHeaders(db, req.headers, queryToken, { address: this.clientAddress(req) });
  }

  clientAddress(req: IncomingMessage): string {
    return clientAddress(req, this.bus.options.trustedProxies);
  }

  onDrain(callback: () => void): () => void {
    this.drainCallbacks.add(callback);
    return () => this.drainCallbacks.delete(callback);
  }

  /** Routes a request; not async, so a handler that answers synchronously pays for no promise. */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    const { corsOrigins } = this.bus.options;
    if (!this.connectionGuard.requestStarted(req, res)) return;
    try {
      if (handlePreflight(req, res, corsOrigins)) return;
      applyCors(req, res, corsOrigins);
      const raw = req.url ?? "/";
      const q = raw.indexOf("?");
      const pathname = q < 0 ? raw : raw.slice(0, q);
      if (this.draining) {
        res.setHeader("connection", "close");
        // Probes keep their own answers while draining (/readyz: 503 {"status":"draining"}).
        if (pathname !== "/readyz" && pathname !== "/healthz") throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
      }
      const match = this.router.match(req.method ?? "GET", pathname);
      if (match === null) throw new TidingsError("TIDINGS_ERR_NOT_FOUND");
      if (match === "method") throw new TidingsError("TIDINGS_ERR_REQUEST_METHOD");
      const ctx = new HttpRequestContext(req, res, match.params, match.route, this.bus.options.maxBodyBytes);
      const pending = match.route.handler(ctx);
      if (pending !== undefined) pending.catch((error: unknown) => this.failRequest(req, res, error));
    } catch (error) {
      this.failRequest(req, res, error);
    }
  }

  failRequest(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const e = toTidingsError(error);
    if (e.status >= 500 && e.code !== "TIDINGS_ERR_SHUTTING_DOWN" && e.code !== "TIDINGS_ERR_DB_BUS_DISABLED") {
      this.bus.logger.error({ err: e.cause ?? e, url: req.url }, "request failed");
    }
    this.bus.metrics.errors.inc({ code: e.code });
    // Stop reading a body we refuse, so a large upload cannot hold the connection.
    if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
    sendError(res, e);
  }

  async listen(port = this.bus.options.port, host = this.bus.options.host): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException): void => reject(listenFailed(e, host, port));
      this.http.once("error", fail);
      this.http.listen(port, host, () => {
        this.http.off("error", fail);
        resolve();
      });
    });
    this.state = "listening";
    const address = this.http.address() as AddressInfo;
    this.bus.logger.info(
      { host: address.address, port: address.port, store: redactStoreUrl(this.bus.options.store), engine: this.bus.store.engine, runtime: RUNTIME },
      "tidings listening",
    );
    const files = this.files;
    const problem = connectionCapProblem(this.bus.options.maxConnections, files);
    const facts = { openFilesSoft: files?.soft, openFilesHard: files?.hard, maxConnections: connectionCap(this.bus.options.maxConnections, files) };
    if (problem !== null) this.bus.logger.warn(facts, problem);
    else if (files !== null) this.bus.logger.info(facts, "open-files limit");
    return address;
  }

  /** The base URL clients use, once listening. */
  get url(): string {
    const a = this.http.address() as AddressInfo;
    return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Graceful shutdown; safe to call twice. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = (async () => {
      this.state = "draining";
      const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
      for (const cb of [...this.drainCallbacks]) {
        try {
          cb();
        } catch (e) {
          this.bus.logger.warn({ err: e }, "drain callback failed");
        }
      }
      // Answered polls leave keep-alive sockets idle: close them as they become so.
      this.http.closeIdleConnections();
      const idleSweep = setInterval(() => this.http.closeIdleConnections(), 50);
      idleSweep.unref();
      const grace = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, this.bus.options.shutdownGraceMs);
      grace.unref();
      await closed;
      this.bodies.close();
      clearTimeout(grace);
      clearInterval(idleSweep);
      try {
        await this.tryton?.close();
        await this.bus.close();
      } finally {
        await this.ownedVerifier?.close();
      }
      this.state = "closed";
    })();
    return this.closing;
  }
}

export function createServer(input: ServerInput = {}): Promise<TidingsServer> {
  return TidingsServer.create(input);
}
