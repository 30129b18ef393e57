import type { ClientEventMap } from "./events.js";
import type { Methods } from "./runner.js";
import type { WebSocketConstructor } from "./websocket-like.js";

export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly db: string;
  /** A JWT whose `addresses` allow the addresses exposed, or a function returning a fresh one. */
  readonly token: string | (() => string | Promise<string>);
  /** @default "websocket" */
  readonly transport?: "websocket" | "longpoll";
  /** The WebSocket class (browsers: the global one; Node 20: `ws`'s default export). */
  readonly WebSocket?: WebSocketConstructor;
  /** @default `/<db>/ws` */
  readonly wsPath?: string;
  /** fetch, for the long-poll transport. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Long-poll: most commands run at once per address. @default 8 */
  readonly maxInFlight?: number;
  /**
   * Report a command as running only once its method has run this long. Over long-polling
   * each report is one more request, so instant methods skip it (delivered → succeeded).
   * @default 0 over WebSocket, 20 over long-polling
   */
  readonly startDelayMs?: number;
  /** @default 250 */
  readonly reconnectBaseMs?: number;
  /** @default 10000 */
  readonly reconnectMaxMs?: number;
}

/** A client serving command addresses. */
export interface CommandClient {
  /** Serves `address`: the server's commands to it call these methods. Resolves once registered. */
  expose(address: string, methods: Methods): Promise<void>;
  on<K extends keyof ClientEventMap>(event: K, listener: (payload: ClientEventMap[K]) => void): () => void;
  /** Commands running now. */
  readonly running: number;
  /** Stops serving; safe to call twice. */
  close(): Promise<void>;
}

/** The server refused a request: `code` is the stable TIDINGS_ERR_… code. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = "RemoteError";
  }

  /** From a rohrpost error frame (`error` text, `data.code`) or an HTTP error body's `error` object. */
  static from(message: string, data: unknown): RemoteError {
    const d = typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {};
    const code = typeof d.code === "string" ? d.code : "TIDINGS_ERR_UNKNOWN";
    return new RemoteError(message, code, d);
  }
}
