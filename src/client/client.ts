import { FRAME, type CommandDelivery } from "../protocol/commands.js";
import { Backoff, sleep } from "./backoff.js";
import { TypedEvents } from "./events.js";
import { LongPollCommandClient } from "./longpoll.js";
import { CommandRunner, type Methods, type Outcome } from "./runner.js";
import { Subscription, type MessageHandler, type SubscribeOptions } from "./subscription.js";
import { asError, TokenKeeper } from "./token-keeper.js";
import { deadline, probe, requestJson } from "./transports/http.js";
import { LongPollTransport } from "./transports/longpoll.js";
import { SseTransport } from "./transports/sse.js";
import {
  AUTH_CODES,
  type BusMessage,
  type DisconnectInfo,
  type StreamSink,
  type Transport,
  type TransportContext,
  type TransportName,
} from "./transports/transport.js";
import { WebSocketTransport } from "./transports/websocket.js";
import { RemoteError } from "./types.js";
import type { WebSocketConstructor } from "./websocket-like.js";

export interface CreateClientOptions {
  /** The server's base URL, e.g. `https://bus.example` (a page served by tidings: `location.origin`). */
  readonly url: string;
  readonly db: string;
  /** A JWT (`tidings token …`). Give `getToken` instead for tokens that expire while the client runs. */
  readonly token?: string;
  /** Returns a fresh token: called at start, again before each token expires, and when the server refuses one. */
  readonly getToken?: () => string | Promise<string>;
  /** The transports to try, in order. @default ["websocket", "sse", "longpoll"] */
  readonly transports?: readonly TransportName[];
  /** The WebSocket class. Browsers and Node 22+: the global one; Node 20: the `ws` package's default export. */
  readonly WebSocket?: WebSocketConstructor;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Reconnect waits: full jitter, a random delay up to min(maxMs, baseMs · 2^attempt). @default {baseMs: 250, maxMs: 10000} */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  /** WebSocket: an application ping this often. @default 15000 */
  readonly heartbeatMs?: number;
  /**
   * A connection on which nothing was heard for this long is dropped and reconnected (a
   * half-open connection). Must exceed the server's `sseKeepAliveMs` (15 s). @default 40000
   */
  readonly livenessMs?: number;
  /** @default `/<db>/ws` */
  readonly wsPath?: string;
  /** Long-polling: most messages per answer (`max_messages`, 1 to the server's `maxBatch`). @default 100 */
  readonly longPollBatch?: number;
  /** The user whose notifications `onNotification` shows. @default the token's subject */
  readonly user?: string;
}

export interface ConnectedEvent {
  readonly transport: TransportName;
}

export interface ReconnectingEvent {
  /** Failed attempts in a row so far (1 for the first wait). */
  readonly attempt: number;
  readonly delayMs: number;
  /** The transport the next attempt uses. */
  readonly transport: TransportName;
  /** Why the previous connection ended or failed. */
  readonly reason: string;
}

export interface GapEvent {
  /** The channels on which messages may have been missed. */
  readonly channels: readonly string[];
  readonly subscription: Subscription;
}

export interface TidingsClientEventMap {
  connected: ConnectedEvent;
  disconnected: DisconnectInfo;
  reconnecting: ReconnectingEvent;
  gap: GapEvent;
  error: Error;
}

/** A `notify()` message (Tryton's notification). */
export interface NotificationMessage extends BusMessage {
  readonly type: "notification";
  readonly title: string;
  readonly body: string;
  readonly priority: number;
}

const DEFAULT_TRANSPORTS: readonly TransportName[] = ["websocket", "sse", "longpoll"];
const KNOWN = new Set<TransportName>(DEFAULT_TRANSPORTS);
/** Answers to a command result that mean it needs no resending. */
const SETTLED_CODES = new Set(["TIDINGS_ERR_COMMAND_FINAL", "TIDINGS_ERR_COMMAND_NOT_FOUND"]);
/** Answers to a result that the server will never accept: an error is reported instead. */
const REFUSED_CODES = new Set(["TIDINGS_ERR_COMMAND_TOO_LARGE", "TIDINGS_ERR_COMMAND_INVALID"]);

/**
 * The tidings client: subscriptions that resume from their cursor after every reconnect,
 * over WebSocket, Server-Sent Events or long-polling; publish, application calls,
 * notifications and command serving on the same connection.
 */
export class TidingsClient extends TypedEvents<TidingsClientEventMap> {
  private readonly subs = new Set<Subscription>();
  private readonly names: readonly TransportName[];
  private readonly ctx: TransportContext;
  private readonly tokens: TokenKeeper;
  private readonly backoff: Backoff;
  private readonly stop = new AbortController();
  private readonly runner: CommandRunner;
  private readonly addresses = new Map<string, Methods>();
  private readonly connectedWaiters = new Set<() => void>();
  /** The connected transport (opened and its first plan accepted), or null. */
  private live: Transport | null = null;
  /** The newest message id seen: where a subscription without `from` starts. */
  private head: string | null = null;
  private syncChain: Promise<void> = Promise.resolve();
  /** Transports with a re-read queued: calls in a row coalesce into one. */
  private readonly syncDue = new Set<Transport>();
  private httpCommands: LongPollCommandClient | null = null;
  private closed = false;

  constructor(private readonly options: CreateClientOptions) {
    super();
    if (typeof options.url !== "string" || options.url.length === 0) throw new TypeError("createClient: url is required.");
    if (typeof options.db !== "string" || options.db.length === 0) throw new TypeError("createClient: db is required.");
    const source = options.getToken ?? options.token;
    if (source === undefined) throw new TypeError("createClient: give token or getToken.");
    this.names = options.transports ?? DEFAULT_TRANSPORTS;
    if (this.names.length === 0 || this.names.some((n) => !KNOWN.has(n))) {
      throw new TypeError(`createClient: transports must be a non-empty list of ${[...KNOWN].join(", ")}.`);
    }
    const f = options.fetch ?? globalThis.fetch;
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (this.names.some((n) => n !== "websocket") && typeof f !== "function") {
      throw new TypeError("createClient: no fetch implementation; pass one as the fetch option.");
    }
    this.tokens = new TokenKeeper(
      source,
      (token) => this.live?.reauth(token),
      (e) => this.emit("error", e),
    );
    const livenessMs = options.livenessMs ?? 40_000;
    this.ctx = {
      url: options.url.replace(/\/+$/, ""),
      db: options.db,
      tokens: this.tokens,
      fetch: typeof f === "function" ? f.bind(globalThis) : (undefined as unknown as typeof fetch),
      WebSocket: WS,
      wsPath: options.wsPath ?? `/${encodeURIComponent(options.db)}/ws`,
      heartbeatMs: options.heartbeatMs ?? Math.min(15_000, Math.floor(livenessMs / 2)),
      livenessMs,
      longPollBatch: options.longPollBatch ?? 100,
      reportError: (e) => this.emit("error", e),
    };
    this.backoff = new Backoff(options.backoff?.baseMs ?? 250, options.backoff?.maxMs ?? 10_000);
    this.runner = new CommandRunner({
      started: (id) => this.sendCommandFrame({ id, type: FRAME.started }),
      result: (id, outcome: Outcome) => this.sendCommandFrame({ id, type: FRAME.result, data: outcome }),
    });
    void this.run();
  }

  /** The transport in use, or null while (re)connecting. */
  get transport(): TransportName | null {
    return this.live?.name ?? null;
  }

  get connected(): boolean {
    return this.live !== null;
  }

  /**
   * Receives the messages of `channels`, each once, in log order, from `from` (a message_id:
   * what came after it) or from now. Resumes from its cursor after every reconnect.
   */
  subscribe(channels: string | readonly string[], handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    const list = typeof channels === "string" ? [channels] : [...channels];
    if (list.length === 0 || list.some((c) => typeof c !== "string" || c.length === 0)) {
      throw new TypeError("subscribe: give one or more channel names.");
    }
    if (typeof handler !== "function") throw new TypeError("subscribe: the handler must be a function.");
    if (this.closed) throw new Error("The client is closed.");
    const sub = new Subscription(list, handler, options.from ?? this.head, options.onGap, () => this.remove(sub));
    this.subs.add(sub);
    if (this.live !== null) void this.scheduleSync(this.live);
    return sub;
  }

  /** Shows each `notify()` message for this client's user (the token's subject, or the `user` option). */
  onNotification(fn: (notification: NotificationMessage) => void): () => void {
    let sub: Subscription | null = null;
    let stopped = false;
    void this.tokens.current().then(
      () => {
        const user = this.options.user ?? this.tokens.user;
        if (stopped || this.closed) return;
        if (user === null) {
          this.emit("error", new Error("onNotification: no user (the token has no subject); pass the user option."));
          return;
        }
        sub = this.subscribe(`user:${user}`, (m) => {
          if (m.type === "notification") fn(m as NotificationMessage);
        });
      },
      (e: unknown) => this.emit("error", asError(e, "getToken failed")),
    );
    return () => {
      stopped = true;
      sub?.unsubscribe();
    };
  }

  /** Publishes (the token's role must allow it); resolves with the message_id. */
  async publish(channel: string, message: Record<string, unknown>): Promise<string> {
    const live = this.live;
    const answer =
      live instanceof WebSocketTransport
        ? await live.request("publish", { channel, message }, this.ctx.livenessMs)
        : await requestJson(this.ctx, "publish", { channel, message });
    const id = (answer as { message_id?: unknown } | null)?.message_id;
    if (typeof id !== "string") throw new Error("The server's answer to publish had no message_id.");
    return id;
  }

  /** Calls an application rohrpost handler (`server.bus.handle(type, …)`); needs the WebSocket transport. */
  async call(type: string, data?: unknown, options: { readonly timeoutMs?: number } = {}): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const started = Date.now();
    for (;;) {
      if (this.closed) throw new Error("The client is closed.");
      const live = this.live;
      if (live !== null && !(live instanceof WebSocketTransport)) {
        throw new Error(`call() needs the WebSocket transport; this client is connected over ${live.name}.`);
      }
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) throw new Error(`call(${type}): not connected within ${timeoutMs} ms.`);
      if (live instanceof WebSocketTransport) return live.request(type, data, left);
      await this.whenConnected(left);
    }
  }

  /** Serves `address`: the server's commands to it run these methods, each command id once. */
  async expose(address: string, methods: Methods): Promise<void> {
    this.runner.expose(address, methods);
    this.addresses.set(address, methods);
    for (;;) {
      if (this.closed) throw new Error("The client is closed.");
      const live = this.live;
      if (live instanceof WebSocketTransport) {
        try {
          await live.request(FRAME.register, { address }, this.ctx.livenessMs);
          return;
        } catch (e) {
          if (e instanceof RemoteError) {
            this.addresses.delete(address);
            throw e;
          }
          // dropped meanwhile: registered again on the next connection
        }
      } else if (live !== null) {
        return this.commandsOverHttp().expose(address, methods);
      }
      await this.whenConnected(0);
    }
  }

  /** Commands running now. */
  get running(): number {
    return this.runner.running + (this.httpCommands?.running ?? 0);
  }

  /** Stops everything: connection, timers, command loops. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    this.tokens.stop();
    this.live?.close("client closing");
    this.live = null;
    for (const w of this.connectedWaiters) w();
    this.connectedWaiters.clear();
    for (const s of this.subs) s.deactivate();
    this.subs.clear();
    await this.httpCommands?.close();
  }

  private remove(sub: Subscription): void {
    if (!this.subs.delete(sub)) return;
    if (this.live !== null) void this.scheduleSync(this.live);
  }

  /** Connect, serve, and reconnect with backoff until closed. */
  private async run(): Promise<void> {
    let index = 0;
    let failures = 0;
    while (!this.closed) {
      const name = this.names[index % this.names.length]!;
      const t = this.makeTransport(name);
      let reason: string;
      let opened = false;
      try {
        await t.open();
        if (this.closed) {
          t.close("client closing");
          return;
        }
        this.live = t;
        const ok = await this.scheduleSync(t);
        if (!ok) throw new Error(`${name}: the subscriptions could not be read`);
        // Open and reading: from now on a failure is a drop, not a transport that does not work here.
        opened = true;
        this.backoff.reset();
        failures = 0;
        this.emit("connected", { transport: name });
        for (const w of this.connectedWaiters) w();
        this.connectedWaiters.clear();
        this.afterConnect(t);
        const info = await t.ended;
        if (this.live === t) this.live = null;
        if (this.closed) return;
        this.emit("disconnected", info);
        reason = info.reason;
        // Back to the preferred transport after a drop; a failure to open moves down the list.
        index = 0;
      } catch (e) {
        if (this.live === t) this.live = null;
        t.close("failed");
        if (this.closed) return;
        const err = asError(e);
        reason = err.message;
        this.emit("error", err);
        // A transport that fails while the server answers is refused or blocked here: try the
        // next. When the server does not answer at all (a restart), stay with the preferred one.
        if (!opened && (await this.reachable())) index++;
      }
      failures++;
      const delayMs = this.backoff.next();
      this.emit("reconnecting", { attempt: failures, delayMs, transport: this.names[index % this.names.length]!, reason });
      await sleep(delayMs, this.stop.signal);
    }
  }

  private async reachable(): Promise<boolean> {
    if (typeof this.ctx.fetch !== "function") return true;
    const d = deadline(Math.min(5000, this.ctx.livenessMs), this.stop.signal);
    try {
      await probe(this.ctx, d.signal);
      return true;
    } catch {
      return false;
    } finally {
      d.clear();
    }
  }

  private makeTransport(name: TransportName): Transport {
    if (name === "websocket") return new WebSocketTransport(this.ctx, (frame) => this.commandFrame(frame));
    if (name === "sse") return new SseTransport(this.ctx);
    return new LongPollTransport(this.ctx);
  }

  /** Registers exposed addresses on the new connection (WebSocket), or serves them over HTTP. */
  private afterConnect(t: Transport): void {
    if (this.addresses.size === 0) return;
    if (t instanceof WebSocketTransport) {
      const http = this.httpCommands;
      this.httpCommands = null;
      void http?.close();
      for (const address of [...this.addresses.keys()]) {
        t.request(FRAME.register, { address }, this.ctx.livenessMs).catch((e: unknown) => {
          if (!(e instanceof RemoteError)) return; // dropped: the next connection registers it
          this.addresses.delete(address);
          this.emit("error", e);
        });
      }
      return;
    }
    const http = this.commandsOverHttp();
    for (const [address, methods] of this.addresses) {
      http.expose(address, methods).catch((e: unknown) => this.emit("error", asError(e)));
    }
  }

  /** Without WebSocket, commands are claimed over HTTP (docs/protocol/commands.md). */
  private commandsOverHttp(): LongPollCommandClient {
    if (this.httpCommands === null) {
      const c = new LongPollCommandClient({
        url: this.ctx.url,
        db: this.ctx.db,
        token: () => this.tokens.current(),
        fetch: this.ctx.fetch,
        reconnectBaseMs: this.options.backoff?.baseMs ?? 250,
        reconnectMaxMs: this.options.backoff?.maxMs ?? 10_000,
      });
      c.on("error", (e) => this.emit("error", e));
      this.httpCommands = c;
    }
    return this.httpCommands;
  }

  private whenConnected(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.connectedWaiters.delete(done);
        resolve();
      };
      const timer = timeoutMs > 0 ? setTimeout(done, timeoutMs) : undefined;
      this.connectedWaiters.add(done);
    });
  }

  /**
   * Re-reads every subscription over `t` from the oldest cursor among them, in one plan (so the
   * server sends them in one log order). Calls are queued and coalesced. False when `t` failed.
   */
  private scheduleSync(t: Transport): Promise<boolean> {
    this.syncDue.add(t);
    const step = this.syncChain.then(async () => {
      if (this.closed || this.live !== t) return false;
      if (!this.syncDue.delete(t)) return true;
      return this.sync(t);
    });
    this.syncChain = step.then(
      () => undefined,
      () => undefined,
    );
    return step;
  }

  private async sync(t: Transport): Promise<boolean> {
    for (;;) {
      const subs = [...this.subs];
      const channels = [...new Set(subs.flatMap((s) => s.channels))];
      const cursor = oldest(subs.map((s) => s.cursor));
      try {
        await t.sync({ channels, cursor }, this.sink(subs));
        for (const s of subs) s.markReady();
        return true;
      } catch (e) {
        if (e instanceof RemoteError && !AUTH_CODES.has(e.code) && this.refuse(e, subs)) continue;
        this.emit("error", asError(e));
        t.close(`subscribe failed: ${asError(e).message}`);
        return false;
      }
    }
  }

  /**
   * The server refused a plan: the subscriptions named by the error (its `channel`), or else
   * those not yet accepted, are dropped with the error. False when none could be blamed.
   */
  private refuse(error: RemoteError, subs: readonly Subscription[]): boolean {
    const channel = error.details.channel;
    const blamed = subs.filter((s) => (typeof channel === "string" ? s.channels.includes(channel) : !s.isReady));
    if (blamed.length === 0) return false;
    for (const s of blamed) {
      this.subs.delete(s);
      s.fail(error);
    }
    this.emit("error", error);
    return true;
  }

  private sink(subs: readonly Subscription[]): StreamSink {
    return {
      message: (channel, message) => {
        if (this.closed) return;
        if (this.head === null || message.message_id > this.head) this.head = message.message_id;
        for (const s of subs) {
          try {
            s.offer(channel, message);
          } catch (e) {
            this.emit("error", asError(e, "a subscription handler failed"));
          }
        }
      },
      gap: (channels) => {
        for (const s of subs) {
          const hit = channels === null ? s.channels : s.channels.filter((c) => channels.includes(c));
          if (hit.length === 0 || !s.active) continue;
          s.gap(hit);
          this.emit("gap", { channels: hit, subscription: s });
        }
      },
      refused: (error) => {
        if (error instanceof RemoteError && this.refuse(error, subs) && this.live !== null) void this.scheduleSync(this.live);
        else this.emit("error", error);
      },
    };
  }

  private sendCommandFrame(frame: { id: string; type: string; data?: Outcome }): void {
    const live = this.live;
    // Not connected: the server delivers the command again after we reconnect, and we answer then.
    if (live instanceof WebSocketTransport) live.send(frame);
  }

  private commandFrame(frame: { id?: unknown; type?: unknown; data?: unknown; error?: unknown }): void {
    const { id, type, data, error } = frame;
    if (typeof id !== "string") return;
    if (type === FRAME.command && isDelivery(data)) this.runner.deliver(data);
    else if (type === FRAME.cancel) {
      const state = (data as { state?: unknown } | undefined)?.state;
      this.runner.cancel(id, typeof state === "string" ? state : "cancelled");
    } else if (type === FRAME.result) {
      const code = (data as { code?: unknown } | undefined)?.code;
      if (error === undefined || (typeof code === "string" && SETTLED_CODES.has(code))) this.runner.acknowledged(id);
      else if (typeof code === "string" && REFUSED_CODES.has(code)) this.runner.refused(id, String(error), code);
    }
  }
}

/** The oldest of some cursors (ids sort in log order); null only when none is known. */
function oldest(cursors: ReadonlyArray<string | null>): string | null {
  let min: string | null = null;
  for (const c of cursors) if (c !== null && (min === null || c < min)) min = c;
  return min;
}

function isDelivery(d: unknown): d is CommandDelivery {
  if (typeof d !== "object" || d === null) return false;
  const c = d as Record<string, unknown>;
  return typeof c.id === "string" && typeof c.address === "string" && typeof c.method === "string" && Array.isArray(c.args) && typeof c.attempt === "number";
}

/** Creates a client and starts connecting. */
export function createClient(options: CreateClientOptions): TidingsClient {
  return new TidingsClient(options);
}
