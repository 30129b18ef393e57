/**
 * One catalogue of error codes. Transports map a TidingsError to an HTTP status and JSON
 * body, a rohrpost error frame or a CLI message, always with the same stable `code`.
 * It lives with the wire formats because the codes and statuses are on the wire; server
 * code imports it through src/errors.ts.
 */

export const ERRORS = {
  // request shape
  TIDINGS_ERR_REQUEST_JSON: { status: 400, message: "The body is not valid JSON." },
  TIDINGS_ERR_REQUEST_INVALID: { status: 400, message: "The request is not valid." },
  TIDINGS_ERR_REQUEST_TOO_LARGE: { status: 413, message: "The request body is too large." },
  TIDINGS_ERR_REQUEST_METHOD: { status: 405, message: "Method not allowed." },
  TIDINGS_ERR_REQUEST_CONTENT_TYPE: { status: 415, message: "The body must be JSON (Content-Type: application/json)." },
  TIDINGS_ERR_NOT_FOUND: { status: 404, message: "No such route." },
  // databases and channels
  TIDINGS_ERR_DB_UNKNOWN: { status: 404, message: "Unknown database." },
  TIDINGS_ERR_DB_BUS_DISABLED: { status: 501, message: "The bus is disabled for this database." },
  TIDINGS_ERR_DB_TOO_MANY: { status: 503, message: "This server serves as many databases created on demand as it may (maxDatabases)." },
  TIDINGS_ERR_CHANNEL_INVALID: { status: 400, message: "Invalid channel name." },
  TIDINGS_ERR_CHANNEL_TOO_MANY: { status: 400, message: "Too many channels." },
  TIDINGS_ERR_CHANNEL_FORBIDDEN: { status: 403, message: "Not allowed to use this channel." },
  TIDINGS_ERR_CURSOR_INVALID: { status: 400, message: "last_message must be a string or null." },
  // messages
  TIDINGS_ERR_MESSAGE_INVALID: { status: 400, message: "Invalid message." },
  TIDINGS_ERR_MESSAGE_TOO_LARGE: { status: 413, message: "The message is too large." },
  TIDINGS_ERR_NOTIFY_INVALID: { status: 400, message: "Invalid notification." },
  // model-change broadcasts
  TIDINGS_ERR_CHANGE_INVALID: { status: 400, message: "Invalid change." },
  TIDINGS_ERR_CHANGE_MODEL_INVALID: { status: 400, message: "Invalid model name." },
  TIDINGS_ERR_CHANGE_GROUP_INVALID: { status: 400, message: "Invalid group." },
  TIDINGS_ERR_CHANGE_TABLE_UNKNOWN: { status: 404, message: "No such table." },
  TIDINGS_ERR_CHANGE_TABLE_NO_KEY: { status: 400, message: "The table has no primary key." },
  TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN: { status: 400, message: "No such column in the table." },
  TIDINGS_ERR_CHANGE_ALREADY_WATCHED: { status: 409, message: "The table is already watched." },
  TIDINGS_ERR_CHANGE_NOT_WATCHED: { status: 404, message: "The table is not watched." },
  // auth
  TIDINGS_ERR_AUTH_REQUIRED: { status: 401, message: "Authentication required." },
  TIDINGS_ERR_AUTH_INVALID: { status: 401, message: "Invalid credentials." },
  TIDINGS_ERR_AUTH_EXPIRED: { status: 401, message: "The token has expired." },
  TIDINGS_ERR_AUTH_WRONG_DB: { status: 403, message: "The credentials are for another database." },
  TIDINGS_ERR_AUTH_UNAVAILABLE: { status: 503, message: "The credentials cannot be checked now: their store is unreachable. Retry shortly." },
  TIDINGS_ERR_ROLE_FORBIDDEN: { status: 403, message: "Your role does not allow this." },
  // capacity
  TIDINGS_ERR_LIMIT_POLLS: { status: 429, message: "Too many parked polls." },
  TIDINGS_ERR_LIMIT_RATE: { status: 429, message: "Too many requests." },
  TIDINGS_ERR_LIMIT_UNSENT: { status: 429, message: "Too many answers of yours are still unread: read them first." },
  TIDINGS_ERR_LIMIT_BODIES: { status: 429, message: "Too many request bytes of yours are arriving at once." },
  TIDINGS_ERR_LIMIT_CONNECTIONS: { status: 503, message: "Too many open connections." },
  TIDINGS_ERR_REQUEST_TIMEOUT: { status: 408, message: "The request body did not arrive in time." },
  TIDINGS_ERR_SHUTTING_DOWN: { status: 503, message: "The server is shutting down." },
  TIDINGS_ERR_STORE_UNAVAILABLE: { status: 503, message: "The store cannot be reached now. Retry shortly." },
  TIDINGS_ERR_STORE_SCHEMA: { status: 500, message: "The store's schema was migrated by a newer tidings in a way this version cannot use." },
  // WebSocket requests (rohrpost)
  TIDINGS_ERR_FRAME_INVALID: { status: 400, message: "The frame is not a rohrpost request." },
  TIDINGS_ERR_HANDLER_UNKNOWN: { status: 404, message: "Unknown message type." },
  TIDINGS_ERR_HANDLER_FAILED: { status: 500, message: "The handler failed." },
  TIDINGS_ERR_ORIGIN_FORBIDDEN: { status: 403, message: "Cookie credentials are not accepted from this origin." },
  // commands
  TIDINGS_ERR_COMMAND_INVALID: { status: 400, message: "Invalid command." },
  TIDINGS_ERR_COMMAND_NOT_FOUND: { status: 404, message: "No such command." },
  TIDINGS_ERR_COMMAND_FINAL: { status: 409, message: "The command already has an outcome." },
  TIDINGS_ERR_COMMAND_NOT_YOURS: { status: 403, message: "The command is not held by this client." },
  TIDINGS_ERR_COMMAND_TOO_MANY: { status: 429, message: "Too many open commands for this address." },
  TIDINGS_ERR_ADDRESS_FORBIDDEN: { status: 403, message: "Not allowed to register this address." },
  TIDINGS_ERR_ADDRESS_INVALID: { status: 400, message: "Invalid command address." },
  TIDINGS_ERR_COMMAND_TOO_LARGE: { status: 413, message: "The command's arguments or result are too large." },
  // a command's outcome, as the server-side proxy rejects with it
  TIDINGS_ERR_COMMAND_FAILED: { status: 502, message: "The client reported an error." },
  TIDINGS_ERR_COMMAND_EXPIRED: { status: 504, message: "The command's deadline passed before an outcome." },
  TIDINGS_ERR_COMMAND_CANCELLED: { status: 409, message: "The command was cancelled." },
  // server
  TIDINGS_ERR_INTERNAL: { status: 500, message: "Internal error." },
  TIDINGS_ERR_CONFIG: { status: 500, message: "Invalid configuration." },
  TIDINGS_ERR_STORE_FULL: { status: 507, message: "The store's disk is full: nothing was stored. Publishing resumes once space is freed." },
  TIDINGS_ERR_LISTEN_FAILED: { status: 500, message: "The server cannot listen on its address." },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class TidingsError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TidingsError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = options?.details;
  }

  /** The JSON body of an HTTP error response and the payload of error events. */
  toJSON(): { error: { code: ErrorCode; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...(this.details ?? {}) } };
  }
}

export function isTidingsError(e: unknown): e is TidingsError {
  return e instanceof TidingsError;
}

/** Anything thrown becomes a TidingsError; unknown errors are internal and keep their cause. */
export function toTidingsError(e: unknown): TidingsError {
  if (e instanceof TidingsError) return e;
  return new TidingsError("TIDINGS_ERR_INTERNAL", undefined, { cause: e });
}
