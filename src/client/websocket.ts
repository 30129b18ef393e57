import { FRAME, type CommandDelivery } from "../protocol/commands.js";
import { parseServerFrame } from "../protocol/rohrpost.js";
import { Backoff, sleep } from "./backoff.js";
import { ClientEvents } from "./events.js";
import { CommandRunner, type Methods, type Outcome } from "./runner.js";
import { RemoteError, type ClientOptions, type CommandClient } from "./types.js";
import type { WebSocketConstructor, WebSocketLike } from "./websocket-like.js";

const OPEN = 1;

interface Pending {
  resolve(data: unknown): void;
  reject(error: Error): void;
}

/** Codes after which a result needs no resending: recorded, or nothing left to record. */
const SETTLED_CODES = new Set(["TIDINGS_ERR_COMMAND_FINAL", "TIDINGS_ERR_COMMAND_NOT_FOUND"]);
/** Codes for a result the server will never accept: an error is reported instead. */
const REFUSED_CODES = new Set(["TIDINGS_ERR_COMMAND_TOO_LARGE", "TIDINGS_ERR_COMMAND_INVALID"]);

/**
 * Serves commands over one WebSocket (rohrpost frames), reconnecting with full-jitter
 * backoff. After every (re)connection it registers its addresses again; the server then
 * delivers what is pending, including what it ran when the previous connection dropped.
 */
export class WebSocketCommandClient extends ClientEvents implements CommandClient {
  private socket: WebSocketLike | null = null;
  private readonly addresses = new Map<string, Methods>();
  private readonly pending = new Map<number, Pending>();
  private readonly runner: CommandRunner;
  private readonly backoff: Backoff;
  private readonly stop = new AbortController();
  private readonly Ctor: WebSocketConstructor;
  private nextId = 1;
  private closed = false;
  /** Resolves on every successful registration round, for `expose()` to await. */
  private connected: Promise<void>;
  private markConnected!: () => void;

  constructor(private readonly options: ClientOptions) {
    super();
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket;
    if (typeof Ctor !== "function") {
      throw new Error("No WebSocket implementation: pass one as the WebSocket option (e.g. the `ws` package in Node 20).");
    }
    this.Ctor = Ctor as WebSocketConstructor;
    this.backoff = new Backoff(options.reconnectBaseMs ?? 250, options.reconnectMaxMs ?? 10_000);
    this.runner = new CommandRunner(
      {
        started: (id) => this.answer(id, FRAME.started, undefined),
        result: (id, outcome) => this.answer(id, FRAME.result, outcome),
      },
      { startDelayMs: options.startDelayMs ?? 0 },
    );
    this.connected = new Promise((resolve) => (this.markConnected = resolve));
    void this.loop();
  }

  /** Serves `address` with `methods`; resolves once the server accepted the registration. */
  async expose(address: string, methods: Methods): Promise<void> {
    this.runner.expose(address, methods);
    this.addresses.set(address, methods);
    for (;;) {
      if (this.closed) throw new Error("The client is closed.");
      const socket = this.socket;
      if (socket !== null && socket.readyState === OPEN) {
        try {
          await this.request(FRAME.register, { address });
          return;
        } catch (e) {
          if (e instanceof RemoteError) {
            this.addresses.delete(address);
            throw e;
          }
          // The connection dropped meanwhile: the next connection registers it.
        }
      }
      await this.connected;
      if (this.addresses.has(address)) return;
    }
  }

  /** Commands running now in this client. */
  get running(): number {
    return this.runner.running;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      try {
        await this.connectOnce();
      } catch (e) {
        this.emit("error", e instanceof Error ? e : new Error(String(e)));
      }
      if (this.closed) break;
      await sleep(this.backoff.next(), this.stop.signal);
    }
  }

  /** One connection's life: open, register every address, serve until it closes. */
  private async connectOnce(): Promise<void> {
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    const base = this.options.url.replace(/^http/, "ws").replace(/\/+$/, "");
    const path = this.options.wsPath ?? `/${encodeURIComponent(this.options.db)}/ws`;
    const socket = new this.Ctor(`${base}${path}?token=${encodeURIComponent(token)}`);
    this.socket = socket;
    await new Promise<void>((resolve) => {
      socket.onmessage = (event) => this.onFrame(event.data);
      socket.onerror = () => {
        // `close` follows and carries the code.
      };
      socket.onopen = () => {
        void this.registerAll(socket);
      };
      socket.onclose = (event) => {
        if (this.socket === socket) this.socket = null;
        for (const p of this.pending.values()) p.reject(new Error(`connection closed (${event.code})`));
        this.pending.clear();
        this.emit("disconnected", { code: event.code, reason: event.reason });
        resolve();
      };
    });
  }

  private async registerAll(socket: WebSocketLike): Promise<void> {
    try {
      for (const address of this.addresses.keys()) {
        try {
          await this.request(FRAME.register, { address });
        } catch (e) {
          if (!(e instanceof RemoteError)) throw e;
          this.addresses.delete(address);
          this.emit("error", e);
        }
      }
      if (this.socket !== socket) return;
      this.backoff.reset();
      this.emit("connected", undefined);
      const mark = this.markConnected;
      this.connected = new Promise((resolve) => (this.markConnected = resolve));
      mark();
    } catch {
      // the socket closed while registering: the loop reconnects
    }
  }

  private request(type: string, data: unknown): Promise<unknown> {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN) return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, type, data }));
    });
  }

  /** `command-started` / `command-result` frames carry the command id as their id. */
  private answer(id: string, type: string, outcome: Outcome | undefined): void {
    const socket = this.socket;
    // Not connected: the server delivers the command again after we reconnect, and then we answer.
    if (socket === null || socket.readyState !== OPEN) return;
    try {
      socket.send(JSON.stringify(outcome === undefined ? { id, type } : { id, type, data: outcome }));
    } catch (e) {
      this.emit("error", e instanceof Error ? e : new Error(String(e)));
    }
  }

  private onFrame(raw: unknown): void {
    const frame = parseServerFrame(raw);
    if (frame === null) return;
    const { id, type, data, error } = frame;
    if (type === FRAME.command && typeof id === "string" && isDelivery(data)) {
      this.runner.deliver(data);
      return;
    }
    if (type === FRAME.cancel && typeof id === "string") {
      const state = (data as { state?: unknown } | undefined)?.state;
      this.runner.cancel(id, typeof state === "string" ? state : "cancelled");
      return;
    }
    if (type === FRAME.result && typeof id === "string") {
      const code = (data as { code?: unknown } | undefined)?.code;
      if (error === undefined || (typeof code === "string" && SETTLED_CODES.has(code))) this.runner.acknowledged(id);
      else if (typeof code === "string" && REFUSED_CODES.has(code)) this.runner.refused(id, String(error), code);
      return;
    }
    if (typeof id === "number") {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      if (typeof error === "string") p.reject(RemoteError.from(error, data));
      else p.resolve(data);
    }
  }

  /** Stops reconnecting and closes the socket; what runs keeps running but is not answered. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.socket?.close(1000, "client closing");
    this.socket = null;
    this.markConnected();
  }
}

function isDelivery(d: unknown): d is CommandDelivery {
  if (typeof d !== "object" || d === null) return false;
  const c = d as Record<string, unknown>;
  return (
    typeof c.id === "string" &&
    typeof c.address === "string" &&
    typeof c.method === "string" &&
    Array.isArray(c.args) &&
    typeof c.attempt === "number"
  );
}
