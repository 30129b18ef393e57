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
  verify(db: string, session: TrytonSession): Promise<Identity | null>;
}

export function parseSessionHeader(value: string): TrytonSession {
  let decoded: string;
  try {
    decoded = Buffer.from(value, "base64").toString("utf8");
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Malformed Session credentials.", { cause });
  }
  // The login may itself hold colons; the user id and key never do.
  const last = decoded.lastIndexOf(":");
  const middle = decoded.lastIndexOf(":", last - 1);
  if (middle <= 0 || last <= middle + 1 || last === decoded.length - 1) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Session credentials must be base64(login:user_id:key).");
  }
  const userId = decoded.slice(middle + 1, last);
  if (!/^\d+$/.test(userId)) throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The Tryton user id must be an integer.");
  return { login: decoded.slice(0, middle), userId, key: decoded.slice(last + 1) };
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
