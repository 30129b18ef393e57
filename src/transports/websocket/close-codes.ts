/**
 * Close codes the server sends, with the reason text. Clients resume from their last
 * message_id after any of them (except 1000); see docs/protocol/websocket.md.
 */
export const CLOSE = {
  /** The server is shutting down: reconnect (to another instance) and resume. */
  SHUTDOWN: { code: 1001, reason: "server shutting down" },
  /** A frame larger than ws.maxPayload (sent by the `ws` library itself). */
  TOO_BIG: { code: 1009, reason: "frame too large" },
  /** The store failed while catching a subscription up: reconnect and resume. */
  INTERNAL: { code: 1011, reason: "store unavailable, resume from your cursor" },
  /** The connection's credentials expired without a fresh `auth`. */
  AUTH_EXPIRED: { code: 4001, reason: "authentication expired" },
  /** Opened without credentials and no `auth` within ws.authTimeoutMs. */
  AUTH_TIMEOUT: { code: 4001, reason: "authentication required" },
  /** Overload: the client did not read and its send buffer passed ws.maxBufferedBytes. */
  SLOW_CONSUMER: { code: 4008, reason: "send buffer full, resume from your last message_id" },
  /** Policy: more frames per second than ws.maxFramesPerSecond. */
  RATE_LIMIT: { code: 4029, reason: "too many frames" },
} as const;

export type CloseReason = (typeof CLOSE)[keyof typeof CLOSE];
