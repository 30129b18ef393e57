import type { Identity } from "./identity.js";
import { TidingsError } from "../errors.js";

/** A request frame as the rohrpost wire carries it: `{"id", "type", "data"}`. */
export interface HandlerRequest {
  readonly id: string | number | boolean | null;
  readonly type: string;
  readonly data?: unknown;
}

/** What a handler can do with the connection that sent the request. */
export interface HandlerContext {
  readonly db: string;
  /** Unique per connection; also the claimer of commands it runs. */
  readonly connectionId: string;
  /** The caller, or null before it authenticated. */
  readonly identity: Identity | null;
  /** The caller, or throws TIDINGS_ERR_AUTH_REQUIRED. */
  requireIdentity(): Identity;
  /** Replies to this request with `data` (echoing its id and type). */
  reply(data?: unknown): void;
  /** Replies to this request with an `error` (and optional `data`). */
  error(message: string, data?: unknown): void;
  /** Sends any frame to this connection. */
  send(frame: { readonly type: string; readonly id?: unknown; readonly data?: unknown }): void;
  /** Publishes to a channel of this database (the caller's role must allow it). */
  publish(channel: string, message: Record<string, unknown>): Promise<string>;
  /** Runs `callback` when the connection closes. */
  onClose(callback: () => void): void;
}

/**
 * A handler answers a request by returning a value (sent as the reply's `data`), by
 * calling `ctx.reply`/`ctx.error`, or by throwing (an error reply; the connection stays).
 */
export type Handler = (ctx: HandlerContext, request: HandlerRequest) => unknown | Promise<unknown>;

/** Handlers by name; a name registered twice is a start-up error, not a silent override. */
export class HandlerRegistry {
  private readonly handlers = new Map<string, Handler>();
  /** Names the WebSocket transport answers itself (ping, subscribe, ...). */
  private readonly reserved = new Set<string>();

  register(name: string, handler: Handler): void {
    if (typeof name !== "string" || name.length === 0) {
      throw new TidingsError("TIDINGS_ERR_CONFIG", "A handler needs a non-empty name.");
    }
    if (this.reserved.has(name)) {
      throw new TidingsError("TIDINGS_ERR_CONFIG", `${JSON.stringify(name)} is a built-in request type; choose another name.`);
    }
    if (this.handlers.has(name)) {
      throw new TidingsError("TIDINGS_ERR_CONFIG", `A handler named ${JSON.stringify(name)} is already registered.`);
    }
    this.handlers.set(name, handler);
  }

  /** Reserves built-in names; one already registered by the application is a start-up error. */
  reserve(names: Iterable<string>): void {
    for (const name of names) {
      if (this.handlers.has(name)) {
        throw new TidingsError("TIDINGS_ERR_CONFIG", `${JSON.stringify(name)} is a built-in request type; choose another name.`);
      }
      this.reserved.add(name);
    }
  }

  get(name: string): Handler | undefined {
    return this.handlers.get(name);
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }
}
