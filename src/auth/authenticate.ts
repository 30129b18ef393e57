import { bearerToken, parseAuthorization } from "./credentials.js";
import type { IncomingHttpHeaders } from "node:http";
import type { Identity } from "../core/identity.js";
import { TidingsError } from "../errors.js";
import { verifyToken } from "./tokens.js";
import { TokenCache } from "./token-cache.js";
import { parseSessionCookie, parseSessionHeader, TRYTON_SESSION_COOKIE, type SessionRequest, type SessionVerifier, type TrytonSession } from "./tryton-session.js";
import { assertCookieOrigin } from "./cookie-origin.js";

export interface AuthOptions {
  readonly secret: string;
  readonly sessionCookie: string;
  readonly sessionVerifier?: SessionVerifier | undefined;
  /** Pages of other origins whose cookie-authenticated requests are accepted (corsOrigins); default none. */
  readonly allowedOrigins?: readonly string[];
}

/**
 * Establishes who is calling for a database, from (in order) the Authorization header
 * (`Bearer <JWT>` or Tryton's `Session …`), the session cookie, trytond 8's `tryton_session`
 * cookie (with a session verifier), or an explicit token (a WebSocket `auth` frame, an
 * EventSource `?token=`). Deny by default.
 */
export class Authenticator {
  private readonly verified = new TokenCache();
  /** The last Bearer header each connection presented, and who it was (verified, cached). */
  private readonly byConnection = new WeakMap<object, { readonly header: string; readonly identity: Identity }>();

  constructor(private readonly options: AuthOptions) {}

  /** `request` is handed to the session verifier with a Tryton session (its client's address). */
  async fromHeaders(db: string, headers: IncomingHttpHeaders, queryToken?: string | null, request: SessionRequest = {}): Promise<Identity> {
    const parsed = parseAuthorization(headers.authorization);
    if (parsed !== null) {
      const { scheme, value } = parsed;
      if (scheme === "bearer" && value) return this.fromToken(db, value, "jwt");
      if (scheme === "session" && value) return this.checkSession(db, parseSessionHeader(value), request);
      throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Unsupported Authorization scheme: use Bearer or Session.");
    }
    const cookie = readCookie(headers.cookie, this.options.sessionCookie);
    if (cookie) {
      this.checkCookieOrigin(headers);
      return this.fromToken(db, cookie, "cookie");
    }
    // sao 8 sends no header: trytond 8 keeps its session in a cookie, sent to /<db>/… only.
    const trytonCookie = this.options.sessionVerifier === undefined ? null : readCookie(headers.cookie, TRYTON_SESSION_COOKIE, false);
    if (trytonCookie) {
      this.checkCookieOrigin(headers);
      return this.checkSession(db, parseSessionCookie(trytonCookie), request);
    }
    if (queryToken) return this.fromToken(db, queryToken, "jwt");
    throw new TidingsError("TIDINGS_ERR_AUTH_REQUIRED");
  }

  /**
   * The caller from a Bearer token or cookie already verified, without awaiting anything:
   * the fast path of a re-polling client. Undefined means "use fromHeaders". With the
   * request's `connection`, a keep-alive client presenting the same Authorization header
   * as on its previous request is known by a string comparison, without hashing the token.
   */
  cachedFromHeaders(db: string, headers: IncomingHttpHeaders, connection?: object): Identity | undefined {
    const authorization = headers.authorization;
    let key: string | null = null;
    if (authorization !== undefined && authorization.length > 0) {
      if (connection !== undefined) {
        const last = this.byConnection.get(connection);
        if (last !== undefined && last.header === authorization) {
          const expiresAt = last.identity.expiresAt;
          if (expiresAt === null || expiresAt > Date.now()) return checkDb(db, last.identity);
        }
      }
      key = bearerToken(authorization);
    } else {
      const cookie = readCookie(headers.cookie, this.options.sessionCookie);
      if (cookie) {
        this.checkCookieOrigin(headers);
        key = `c\u0000${cookie}`;
      }
    }
    if (key === null) return undefined;
    const identity = this.verified.get(key);
    if (identity === undefined) return undefined;
    if (connection !== undefined && authorization !== undefined && authorization.length > 0) {
      this.byConnection.set(connection, { header: authorization, identity });
    }
    return checkDb(db, identity);
  }

  /** Refuses a cookie-authenticated request sent by a page of another site (cross-site request forgery). */
  checkCookieOrigin(headers: IncomingHttpHeaders): void {
    assertCookieOrigin(headers, this.options.allowedOrigins ?? []);
  }

  async fromToken(db: string, token: string, via: Identity["via"] = "jwt"): Promise<Identity> {
    const key = via === "cookie" ? `c\u0000${token}` : token;
    let identity = this.verified.get(key);
    if (identity === undefined) {
      // Expired, forged and malformed tokens throw here and are never cached.
      identity = await verifyToken(this.options.secret, token, via);
      this.verified.set(key, identity);
    }
    return checkDb(db, identity);
  }

  private async checkSession(db: string, session: TrytonSession, request: SessionRequest): Promise<Identity> {
    const verifier = this.options.sessionVerifier;
    if (verifier === undefined) {
      throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Tryton Session credentials are not enabled on this server.");
    }
    const identity = await verifier.verify(db, session, request);
    if (identity === null) throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Unknown or expired Tryton session.");
    return checkDb(db, identity);
  }
}

function checkDb(db: string, identity: Identity): Identity {
  if (identity.db === db || (identity.db === "*" && identity.role === "admin")) return identity;
  throw new TidingsError("TIDINGS_ERR_AUTH_WRONG_DB", `These credentials are for database ${JSON.stringify(identity.db)}.`);
}

/** A cookie's value, percent-decoded unless `decode` is false (a cookie written by another server). */
export function readCookie(header: string | undefined, name: string, decode = true): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      if (!decode) return value;
      try {
        return decodeURIComponent(value);
      } catch {
        return null;
      }
    }
  }
  return null;
}
