import type { HandlerContext } from "../../core/handlers.js";
import type { Identity } from "../../core/identity.js";
import { canPublish } from "../../core/identity.js";
import { TidingsError } from "../../errors.js";
import { encodeError, encodeFrame, type RohrpostRequest } from "../../protocol/rohrpost.js";
import type { ConnectionApi } from "./connection-api.js";

/**
 * What a handler (built-in or the application's) gets for one request: the connection's
 * identity and helpers, and reply/error bound to this request. A request is answered once.
 */
export class RohrpostRequestContext implements HandlerContext {
  answered = false;

  constructor(
    private readonly conn: ConnectionApi,
    readonly request: RohrpostRequest,
  ) {}

  get db(): string {
    return this.conn.db;
  }

  get connectionId(): string {
    return this.conn.id;
  }

  get identity(): Identity | null {
    return this.conn.identity;
  }

  requireIdentity(): Identity {
    const who = this.conn.identity;
    if (who === null) {
      throw new TidingsError("TIDINGS_ERR_AUTH_REQUIRED", 'Authentication required: send {"type": "auth", "data": {"token": …}} first, or auth_jwt.');
    }
    return who;
  }

  reply(data?: unknown): void {
    if (this.answered) return;
    this.answered = true;
    this.conn.sendText(encodeFrame(this.request.type, this.request.id, data));
  }

  error(message: string, data?: unknown): void {
    if (this.answered) return;
    this.answered = true;
    this.conn.sendText(JSON.stringify({ id: this.request.id, type: this.request.type, error: String(message), data }));
  }

  /** An error reply from anything thrown: its stable code, message and details. */
  fail(e: TidingsError): void {
    if (this.answered) return;
    this.answered = true;
    this.conn.sendText(encodeError(this.request, e.message, e.code, e.details));
  }

  send(frame: { readonly type: string; readonly id?: unknown; readonly data?: unknown }): void {
    this.conn.sendText(encodeFrame(frame.type, frame.id, frame.data));
  }

  async publish(channel: string, message: Record<string, unknown>): Promise<string> {
    const who = this.requireIdentity();
    if (!canPublish(who)) throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "Publishing needs the publisher or admin role.");
    return this.conn.bus.publish(this.conn.db, channel, message);
  }

  onClose(callback: () => void): void {
    this.conn.onClose(callback);
  }
}
