import type { IncomingMessage } from "node:http";
import { decodeJwt } from "jose";
import { bearerToken } from "../../auth/credentials.js";
import { readCookie } from "../../auth/authenticate.js";
import type { Identity } from "../../core/identity.js";
import { TidingsError } from "../../errors.js";
import type { ServerContext } from "./context.js";

/**
 * The caller of a request that names no database: a Bearer token or the session cookie.
 * The token's own `db` claim picks the database it is verified for; the verification then
 * checks the signature and that the verified claim is that same database.
 */
export async function adminCaller(server: ServerContext, req: IncomingMessage): Promise<Identity> {
  const authorization = req.headers.authorization;
  let token: string | null = null;
  let via: Identity["via"] = "jwt";
  if (authorization !== undefined && authorization.length > 0) {
    token = bearerToken(authorization);
    if (token === null) {
      throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The admin API accepts Bearer tokens or the session cookie.");
    }
  } else {
    token = readCookie(req.headers.cookie, server.options.sessionCookie);
    via = "cookie";
    if (token) server.authenticator.checkCookieOrigin(req.headers);
  }
  if (!token) throw new TidingsError("TIDINGS_ERR_AUTH_REQUIRED");
  let db: unknown;
  try {
    db = decodeJwt(token).db;
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Invalid token.", { cause });
  }
  if (typeof db !== "string") throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The token lacks a subject or a database.");
  return server.authenticator.fromToken(db, token, via);
}
