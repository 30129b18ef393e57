import postgres from "postgres";
import type { Identity } from "../core/identity.js";
import { TidingsError } from "../errors.js";
import { DEFAULT_TRYTON_SESSIONS, trytonServerUrlProblem } from "../options.js";
import type { SessionRequest, SessionVerifier, TrytonSession } from "./tryton-session.js";

export interface TrytonPostgresVerifierOptions {
  /**
   * Tryton's PostgreSQL server, without a database (`postgres://tryton@db-host:5432/`): the
   * database is the tidings database name, which is the Tryton database name.
   */
  readonly url: string;
  /** @default 2_592_000 — trytond's `session.max_age` (30 days), counted from the session's creation. */
  readonly maxAgeSeconds?: number;
  /** @default 604_800 — a session unused this long (since write_date, else create_date) is refused. */
  readonly timeoutSeconds?: number;
  /** @default 30 — how long an accepted session is reused without asking Tryton's database (0: never). */
  readonly cacheSeconds?: number;
  /** @default 2 — connections of the pool of each Tryton database. */
  readonly maxConnectionsPerDb?: number;
  /** The clock of the cache (ms since epoch); tests move it. */
  readonly now?: () => number;
}

/** Ids are PostgreSQL `integer`s; a larger one would be a query error, not a refusal. */
const MAX_ID = 2_147_483_647;
const MAX_CACHED = 10_000;

interface Row {
  readonly login: string;
  readonly active: boolean | null;
  /** Seconds until the first of the two limits (max age, idle timeout) is reached. */
  readonly remaining: number;
}

/**
 * Checks `Authorization: Session base64(login:user_id:key)` against Tryton's own
 * `ir_session` table, read-only. It mirrors trytond's `ir/session.py`
 * (tryton/tryton, trytond/trytond/ir/session.py) as far as a reader can:
 *
 * - `Session.check(user, key)`, which authenticates every request, the bus included: a row
 *   with `create_uid = user` and that key, whose `create_date` is within `session.max_age`
 *   of now (`abs(create_date - now) < max_age`). trytond runs in UTC (trytond/__init__.py
 *   sets TZ=UTC), so its naive timestamps are compared with `now() AT TIME ZONE 'UTC'`.
 * - `Session.check_timeout`: `last_modified_at` (write_date, else create_date) within a
 *   timeout. trytond applies its `session.timeout` (300 s) only to "fresh session" RPCs and
 *   refreshes write_date on RPC calls (`Session.reset`, at most every timeout/10); a bus
 *   poll (trytond/bus.py `subscribe`, `@app.auth_required` → `security.check`) refreshes
 *   nothing. So the timeout here is an idle limit of its own (7 days), not trytond's.
 * - trytond 8 (`ir_session.ip_address`, "Restrict sessions to the client's IP address"):
 *   `Session.check` only finds rows whose `ip_address` is the request's address. Where the
 *   column exists, so does this, with the client's address behind `trustedProxies` (as
 *   trytond's behind `num_proxies`); trytond 6, without the column, binds nothing.
 * - Not mirrored: the deletion of expired rows (a reader writes nothing; such rows are just
 *   refused), and `max_attempt` (login attempts, not sessions: keys are 256-bit
 *   `token_hex`, not guessable).
 * - Stricter than trytond, which only logs the login of the header: the login must be the
 *   user's, and the user active.
 *
 * Accepted sessions are cached briefly (a long-polling client asks on every poll);
 * refusals are not. A database that cannot be reached answers 503, never 401.
 */
export class TrytonPostgresVerifier implements SessionVerifier {
  private readonly url: string;
  private readonly maxAgeSeconds: number;
  private readonly timeoutSeconds: number;
  private readonly cacheMs: number;
  private readonly maxConnections: number;
  private readonly now: () => number;
  private readonly pools = new Map<string, postgres.Sql>();
  private readonly cache = new Map<string, { identity: Identity; until: number }>();
  /** Per database: whether its `ir_session` binds sessions to an address (trytond 8). */
  private readonly bindsAddress = new Map<string, Promise<boolean>>();
  /** Concurrent checks of the same credentials share one query (clients reconnecting at once). */
  private readonly inFlight = new Map<string, Promise<Identity | null>>();
  private closed = false;

  constructor(options: TrytonPostgresVerifierOptions) {
    const problem = trytonServerUrlProblem(options.url);
    if (problem !== null) throw new TidingsError("TIDINGS_ERR_CONFIG", `Tryton sessions: url ${problem}`);
    this.url = options.url;
    this.maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_TRYTON_SESSIONS.maxAgeSeconds;
    this.timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TRYTON_SESSIONS.timeoutSeconds;
    this.cacheMs = (options.cacheSeconds ?? DEFAULT_TRYTON_SESSIONS.cacheSeconds) * 1000;
    this.maxConnections = options.maxConnectionsPerDb ?? 2;
    this.now = options.now ?? Date.now;
    for (const [name, value] of [
      ["maxAgeSeconds", this.maxAgeSeconds],
      ["timeoutSeconds", this.timeoutSeconds],
      ["maxConnectionsPerDb", this.maxConnections],
    ] as const) {
      if (!Number.isFinite(value) || value <= 0) throw new TidingsError("TIDINGS_ERR_CONFIG", `Tryton sessions: ${name} must be a positive number, got ${value}.`);
    }
    if (!Number.isFinite(this.cacheMs) || this.cacheMs < 0) {
      throw new TidingsError("TIDINGS_ERR_CONFIG", "Tryton sessions: cacheSeconds must not be negative.");
    }
  }

  async verify(db: string, session: TrytonSession, request: SessionRequest = {}): Promise<Identity | null> {
    const id = Number(session.userId);
    if (!Number.isSafeInteger(id) || id > MAX_ID) return null;
    const address = request.address ?? null;
    // Asked on every poll: a plain concatenation, unambiguous (the key's length before it, the login last).
    const cacheKey = `${db}\u0000${session.userId}\u0000${address ?? ""}\u0000${session.key.length}\u0000${session.key}${session.login}`;
    const now = this.now();
    const hit = this.cache.get(cacheKey);
    if (hit !== undefined) {
      if (hit.until > now) return hit.identity;
      this.cache.delete(cacheKey);
    }
    let pending = this.inFlight.get(cacheKey);
    if (pending === undefined) {
      pending = this.check(db, id, session, address, cacheKey).finally(() => this.inFlight.delete(cacheKey));
      this.inFlight.set(cacheKey, pending);
    }
    return pending;
  }

  private async check(db: string, id: number, session: TrytonSession, address: string | null, cacheKey: string): Promise<Identity | null> {
    if (this.closed) throw new TidingsError("TIDINGS_ERR_AUTH_UNAVAILABLE", "Tryton sessions cannot be checked: the verifier is closed.");
    const sql = this.pool(db);
    let rows: Row[];
    try {
      // trytond compares the address as text: NULL (no address known) matches only NULL.
      const sameAddress = (await this.bindsAddressIn(db, sql)) ? sql`AND s.ip_address IS NOT DISTINCT FROM ${address}` : sql``;
      rows = await sql<Row[]>`
        SELECT u.login, u.active,
          EXTRACT(EPOCH FROM LEAST(
            s.create_date + make_interval(secs => ${this.maxAgeSeconds}),
            COALESCE(s.write_date, s.create_date) + make_interval(secs => ${this.timeoutSeconds})
          ) - (now() AT TIME ZONE 'UTC'))::float8 AS remaining
        FROM ir_session s JOIN res_user u ON u.id = s.create_uid
        WHERE s.create_uid = ${id} AND s.key = ${session.key}
          AND abs(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - s.create_date)) < ${this.maxAgeSeconds}
          AND abs(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - COALESCE(s.write_date, s.create_date))) < ${this.timeoutSeconds}
          ${sameAddress}
        LIMIT 1`;
    } catch (cause) {
      throw await this.failure(db, cause);
    }
    const row = rows[0];
    if (row === undefined || row.login !== session.login || row.active !== true) return null;
    const now = this.now();
    const expiresAt = now + Math.max(0, row.remaining) * 1000;
    const identity: Identity = { user: session.userId, db, role: "subscriber", channels: [], addresses: [], expiresAt, via: "session" };
    if (this.cacheMs > 0 && !this.closed) {
      if (this.cache.size >= MAX_CACHED) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      // Never beyond the session's own end.
      this.cache.set(cacheKey, { identity, until: Math.min(now + this.cacheMs, expiresAt) });
    }
    return identity;
  }

  /** Whether the database's `ir_session` has trytond 8's `ip_address`; asked once per database (a failure is asked again). */
  private bindsAddressIn(db: string, sql: postgres.Sql): Promise<boolean> {
    let known = this.bindsAddress.get(db);
    if (known === undefined) {
      known = sql<{ binds: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM pg_attribute
          WHERE attrelid = to_regclass('ir_session') AND attname = 'ip_address' AND NOT attisdropped) AS binds`.then((r) => r[0]?.binds === true);
      known.catch(() => this.bindsAddress.delete(db));
      this.bindsAddress.set(db, known);
    }
    return known;
  }

  /** One small pool per Tryton database, opened on first use. */
  private pool(db: string): postgres.Sql {
    let sql = this.pools.get(db);
    if (sql === undefined) {
      sql = postgres(this.url, {
        database: db,
        max: this.maxConnections,
        idle_timeout: 60,
        // A blackholed server must not hold polls for postgres.js's default 30 s.
        connect_timeout: 5,
        fetch_types: false,
        onnotice: () => {},
        connection: {
          application_name: "tidings-session-verifier",
          default_transaction_read_only: true,
          statement_timeout: 5000,
        },
      });
      this.pools.set(db, sql);
    }
    return sql;
  }

  private async failure(db: string, cause: unknown): Promise<TidingsError> {
    // Tryton answers 404 for a database it does not have (security._get_pool); so do we.
    if (cause instanceof postgres.PostgresError && cause.code === "3D000") {
      const sql = this.pools.get(db);
      this.pools.delete(db);
      await sql?.end({ timeout: 1 });
      return new TidingsError("TIDINGS_ERR_DB_UNKNOWN", `Tryton has no database named ${JSON.stringify(db)}.`, { cause });
    }
    return new TidingsError("TIDINGS_ERR_AUTH_UNAVAILABLE", "Tryton's session database cannot be reached: retry shortly.", { cause });
  }

  /** Ends every pool; safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((sql) => sql.end({ timeout: 5 })));
  }
}
