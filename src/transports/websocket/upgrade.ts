import { bearerToken } from "../../auth/credentials.js";
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Identity } from "../../core/identity.js";
import type { ServerContext } from "../http/context.js";
import { TidingsError, toTidingsError } from "../../errors.js";

/** Who asks to upgrade, for which database; identity null when no credentials came with it. */
export interface UpgradeRequest {
  readonly db: string;
  readonly identity: Identity | null;
  /** The token the identity came from (`?token=` or a Bearer header), if any. */
  readonly token: string | null;
  /** The client's address (behind trusted proxies), for a Tryton session sent later in an `auth` frame. */
  readonly address: string;
}

const WS_PATH = /^\/([^/]+)\/ws\/?$/;

/**
 * Checks a `GET /<db>/ws` upgrade before it is accepted: the database, then credentials when
 * some are given (header, cookie, or `?token=` since browsers cannot set headers on a
 * WebSocket; a cookie only from an allowed origin, as for every cookie-authenticated
 * request). Without credentials the connection opens unauthenticated and must send `auth`
 * (or `auth_jwt`) before anything but `ping`. Throws a TidingsError to refuse.
 */
export async function checkUpgrade(server: ServerContext, req: IncomingMessage): Promise<UpgradeRequest> {
  if (server.draining) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
  const url = new URL(req.url ?? "/", "http://localhost");
  const match = WS_PATH.exec(url.pathname);
  if (match === null) throw new TidingsError("TIDINGS_ERR_NOT_FOUND");
  let db: string;
  try {
    db = decodeURIComponent(match[1]!);
  } catch {
    throw new TidingsError("TIDINGS_ERR_NOT_FOUND");
  }
  server.bus.assertServes(db); // unknown database (404) or bus disabled (501) first, nothing loaded before auth
  const queryToken = url.searchParams.get("token");
  const address = server.clientAddress(req);
  let identity: Identity;
  try {
    identity = await server.authenticate(db, req, queryToken);
  } catch (e) {
    if (e instanceof TidingsError && e.code === "TIDINGS_ERR_AUTH_REQUIRED") return { db, identity: null, token: null, address };
    throw e;
  }
  const token = bearerToken(req.headers.authorization) ?? (identity.via === "jwt" ? queryToken : null);
  return { db, identity, token, address };
}

/** Answers a refused upgrade with the same JSON error body as every HTTP route. */
export function rejectUpgrade(socket: Duplex, error: unknown): void {
  if (socket.destroyed) return;
  const e = toTidingsError(error);
  const body = JSON.stringify(e.toJSON());
  const lines = [
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? "Error"}`,
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Cache-Control: no-store",
    "Connection: close",
  ];
  if (e.status === 401) lines.push('WWW-Authenticate: Bearer realm="tidings"');
  socket.once("finish", () => socket.destroy());
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}
