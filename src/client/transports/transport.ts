import type { TokenKeeper } from "../token-keeper.js";
import type { WebSocketConstructor } from "../websocket-like.js";

export type TransportName = "websocket" | "sse" | "longpoll";

/** A message as published, with the `message_id` the bus gave it. */
export interface BusMessage {
  readonly message_id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** What a transport reads: these channels, after this cursor (null: the server's no-cursor window). */
export interface StreamPlan {
  readonly channels: readonly string[];
  readonly cursor: string | null;
}

/** Where one plan's messages go, in log order. */
export interface StreamSink {
  message(channel: string, message: BusMessage): void;
  /** The server says messages may have been missed on these channels (null: on any of the plan's). */
  gap(channels: readonly string[] | null): void;
  /** The server refused the plan after accepting the connection (a forbidden channel…). */
  refused(error: Error): void;
}

export interface DisconnectInfo {
  readonly transport: TransportName;
  /** The WebSocket close code, or the HTTP status that ended a stream; 0 when there is none. */
  readonly code: number;
  readonly reason: string;
}

/** What every transport gets from the client. */
export interface TransportContext {
  readonly url: string;
  readonly db: string;
  readonly tokens: TokenKeeper;
  readonly fetch: typeof fetch;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly wsPath: string;
  /** WebSocket: an application ping this often. */
  readonly heartbeatMs: number;
  /** Nothing heard for this long means the connection is dead (half-open), whatever the transport. */
  readonly livenessMs: number;
  /** Long-polling: messages per answer (`max_messages`). */
  readonly longPollBatch: number;
  /** Reports a refusal the client should hear about (credentials refused) besides the drop that follows. */
  readonly reportError: (error: Error) => void;
}

/**
 * One connection to the server over one wire. `open()` connects and authenticates (it
 * rejects when it cannot: the client then tries the next transport); `sync()` replaces what
 * it reads; `ended` settles once when an opened connection is over.
 */
export interface Transport {
  readonly name: TransportName;
  open(): Promise<void>;
  readonly ended: Promise<DisconnectInfo>;
  /** Resolves once the server accepted the plan (a gap it signals at once goes to the sink). */
  sync(plan: StreamPlan, sink: StreamSink): Promise<void>;
  /** A fresh token from a scheduled refresh. */
  reauth(token: string): void;
  close(reason: string): void;
}

export function httpBase(ctx: TransportContext): string {
  return `${ctx.url.replace(/\/+$/, "")}/${encodeURIComponent(ctx.db)}`;
}

/** Calls `onDead` when `feed()` was not called for `ms`. Unref'd: the connection itself keeps Node alive. */
export class Watchdog {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly ms: number,
    private readonly onDead: () => void,
  ) {}

  feed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onDead, this.ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Codes that mean "get a fresh token and try again". */
export const AUTH_CODES = new Set(["TIDINGS_ERR_AUTH_EXPIRED", "TIDINGS_ERR_AUTH_INVALID", "TIDINGS_ERR_AUTH_REQUIRED"]);
