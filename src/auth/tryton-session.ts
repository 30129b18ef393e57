import type { Identity } from "../core/identity.js";
import { TidingsError } from "../errors.js";

/** The parts of Tryton's `Authorization: Session base64(login:user_id:key)` header. */
export interface TrytonSession {
  readonly login: string;
  readonly userId: string;
  readonly key: string;
}

/**
 * Checks a Tryton session against the Tryton server's own records. tidings cannot know
 * Tryton's sessions by itself, so the application plugs one in (for example a query on
 * Tryton's `ir_session` table, or a call to its server). Return null to refuse.
 */
export interface SessionVerifier {
  verify(db: string, session: TrytonSession, request?: SessionRequest): Promise<Identity | null>;
}

/** What is known of the request presenting a session. */
export interface SessionRequest {
  /** The client's address (behind `trustedProxies`): trytond 8 binds a session to the address it logged in from. */
  readonly address?: string;
}

/** `Authorization: Session base64(login:user_id:key)`, as Tryton's desktop client and sao up to 7 send it. */
export function parseSessionHeader(value: string): TrytonSession {
  let decoded: string;
  try {
    decoded = Buffer.from(value, "base64").toString("utf8");
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Malformed Session credentials.", { cause });
  }
  return splitSession(decoded, "Session credentials must be base64(login:user_id:key).");
}

/**
 * trytond 8's session cookie, which sao 8 relies on instead of the header: set at login as
 * `tryton_session=login:user_id:key` (not base64) with `Path=/<db>`, HttpOnly and
 * SameSite=Strict (trytond/protocols/wrappers.py, trytond 8.0).
 */
export const TRYTON_SESSION_COOKIE = "tryton_session";

/** The value of the `tryton_session` cookie, raw as the browser sends it (werkzeug may have quoted it). */
export function parseSessionCookie(raw: string): TrytonSession {
  return splitSession(unquoteCookie(raw), "The tryton_session cookie must be login:user_id:key.");
}

function splitSession(decoded: string, malformed: string): TrytonSession {
  // The login may itself hold colons; the user id and key never do.
  const last = decoded.lastIndexOf(":");
  const middle = decoded.lastIndexOf(":", last - 1);
  if (middle <= 0 || last <= middle + 1 || last === decoded.length - 1) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", malformed);
  }
  const userId = decoded.slice(middle + 1, last);
  if (!/^\d+$/.test(userId)) throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The Tryton user id must be an integer.");
  return { login: decoded.slice(0, middle), userId, key: decoded.slice(last + 1) };
}

/**
 * werkzeug writes a cookie value holding a space, a quote or a non-ASCII character (a login
 * such as `josé m`) as a quoted string with backslash escapes, octal for bytes: `"jos\303\251 m"`.
 */
function unquoteCookie(raw: string): string {
  if (raw.length < 2 || !raw.startsWith('"') || !raw.endsWith('"')) return raw;
  const inner = raw.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < inner.length; i++) {
    const c = inner.charCodeAt(i);
    if (c === 0x5c && i + 1 < inner.length) {
      const octal = /^[0-3][0-7]{2}/.exec(inner.slice(i + 1, i + 4));
      if (octal !== null) {
        bytes.push(parseInt(octal[0], 8));
        i += 3;
      } else {
        bytes.push(inner.charCodeAt(++i) & 0xff);
      }
    } else {
      // Outside escapes werkzeug leaves only printable ASCII.
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/**
 * A verifier over a fixed table of sessions (login, user id, key), for tests and for
 * deployments that sync Tryton's sessions into tidings' configuration.
 */
export class StaticSessionVerifier implements SessionVerifier {
  constructor(private readonly sessions: ReadonlyArray<TrytonSession & { db: string }>) {}

  async verify(db: string, s: TrytonSession): Promise<Identity | null> {
    const found = this.sessions.find((x) => x.db === db && x.login === s.login && x.userId === s.userId && x.key === s.key);
    if (!found) return null;
    return { user: s.userId, db, role: "subscriber", channels: [], addresses: [], expiresAt: null, via: "session" };
  }
}
