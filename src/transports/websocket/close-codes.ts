/**
 * Close codes the server sends, with the reason text, and what each means to a client (the
 * AsyncAPI document at `GET /asyncapi.json` lists them). Clients resume from their last
 * message_id after any of them (except 1000); see docs/protocol/websocket.md.
 */
export const CLOSE = {
  SHUTDOWN: { code: 1001, reason: "server shutting down", meaning: "The server is shutting down: reconnect (to another instance) and resume." },
  TOO_BIG: { code: 1009, reason: "frame too large", meaning: "A frame larger than ws.maxPayload (sent by the WebSocket layer itself)." },
  INTERNAL: { code: 1011, reason: "store unavailable, resume from your cursor", meaning: "The store failed while catching a subscription up: reconnect and resume." },
  AUTH_EXPIRED: { code: 4001, reason: "authentication expired", meaning: "The connection's credentials expired without a fresh `auth`." },
  AUTH_TIMEOUT: { code: 4001, reason: "authentication required", meaning: "Opened without credentials and no `auth` within ws.authTimeoutMs." },
  SLOW_CONSUMER: { code: 4008, reason: "send buffer full, resume from your last message_id", meaning: "Overload: the client did not read and its unsent data passed ws.maxBufferedBytes." },
  RATE_LIMIT: { code: 4029, reason: "too many frames", meaning: "Policy: more frames per second than ws.maxFramesPerSecond." },
} as const;

export type CloseReason = (typeof CLOSE)[keyof typeof CLOSE];
