import type { AccessRule } from "./core/access.js";
import { TidingsError } from "./errors.js";
import { isValidDbName } from "./core/channels.js";
import { checkAccessRules, checkDatabases } from "./options-check.js";

export interface RetentionOptions {
  /** @default 24 — messages older than this many hours are removed (0: no age limit). */
  readonly maxAgeHours: number;
  /** @default 1_000_000 — at most this many messages per database (0: no count limit). */
  readonly maxCount: number;
}

export interface DatabaseOptions {
  /** @default true — false answers 501 on the bus routes, which makes Tryton clients stop polling. */
  readonly bus: boolean;
  readonly retention: RetentionOptions;
}

export interface WebSocketOptions {
  /** @default 65536 — largest accepted frame, in bytes. */
  readonly maxPayload: number;
  /** @default 4 MiB — a socket whose unsent data passes this is closed (code 4008) and must resume. */
  readonly maxBufferedBytes: number;
  /** @default 200 — frames a client may send per second before it is closed (code 4029). */
  readonly maxFramesPerSecond: number;
  /** @default 30000 — protocol-level ping interval; a peer silent for two intervals is dropped. */
  readonly pingIntervalMs: number;
  /** @default 1000 — most channels one socket may subscribe to. */
  readonly maxSubscriptions: number;
  /** @default 100 — requests of one socket being answered at once; more get TIDINGS_ERR_LIMIT_RATE. */
  readonly maxPendingRequests: number;
  /** @default 10000 — a socket that has not authenticated this long after opening is closed (code 4001). */
  readonly authTimeoutMs: number;
}

export interface CommandOptions {
  /** @default 256 KiB — largest JSON of a command's arguments. */
  readonly maxArgsBytes: number;
  /** @default 1 MiB — largest JSON of a command's result or error. */
  readonly maxResultBytes: number;
  /** @default 1000 — most commands not yet final per address. */
  readonly maxOpenPerAddress: number;
  /** @default 30000 — how long a client's claim on a command holds without being renewed. */
  readonly leaseMs: number;
  /** @default 86_400_000 — deadline of a command sent without one (24 h). */
  readonly defaultDeadlineMs: number;
  /** @default 32 — most commands one connection holds (delivered or running) at a time. */
  readonly maxInFlight: number;
  /** @default 1000 — how often due deadlines are swept (deadlines this process knows of fire on time). */
  readonly expiryIntervalMs: number;
}

/**
 * Checking Tryton's `Session` header against Tryton's own PostgreSQL database
 * (src/auth/tryton-pg-verifier.ts). Off unless `url` is set.
 */
export interface TrytonSessionOptions {
  /** Tryton's PostgreSQL server, without a database: `postgres://tryton@db-host:5432/`. */
  readonly url: string;
  /** @default 2_592_000 — trytond's `session.max_age` (30 days), counted from the session's creation. */
  readonly maxAgeSeconds: number;
  /** @default 604_800 — a session unused this long (since its write_date, else create_date) is refused. */
  readonly timeoutSeconds: number;
  /** @default 30 — an accepted session is reused this long without asking Tryton's database (0: never). */
  readonly cacheSeconds: number;
}

/**
 * Making tidings the bus of Tryton databases (src/tryton/ingest.ts, docs/tryton.md): what
 * trytond publishes in each served database is appended to that database's log, Tryton
 * sessions are accepted (as `trytonSessions` with the same url), `chat:` channels follow
 * `chat`. Off unless `url` is set.
 */
export interface TrytonOptions {
  /** Tryton's PostgreSQL server, without a database: `postgres://tryton@db-host:5432/`. */
  readonly url: string;
  /** @default "authenticated" — who reads `chat:<resource>`: any user of the database (as trytond), or only by `accessRules`/token patterns ("rules"). */
  readonly chat: "authenticated" | "rules";
  /** @default 2000 — how often a standby instance tries to lead a database, and the leader re-reads the adapter's table (a lost wake-up costs at most this). */
  readonly pollIntervalMs: number;
}

/** Every option of a tidings server, each with its default. */
export interface TidingsOptions {
  /** @default "127.0.0.1" */
  readonly host: string;
  /** @default 8080 */
  readonly port: number;
  /** @default "./data" — where the SQLite file and the generated secret live. */
  readonly dataDir: string;
  /** @default "sqlite:<dataDir>/tidings.db" — also "memory:", "postgres://…", "redis://…". */
  readonly store: string;
  /** Secret for HS256 tokens; several instances must share it. @default generated in dataDir */
  readonly secret: string | undefined;
  /**
   * Databases served, by name, with their options. A name of "*" accepts any valid name
   * with the default options. @default { tidings: {} }
   */
  readonly databases: Readonly<Record<string, DatabaseOptions>>;
  /**
   * @default 1000 — databases a "*" entry serves at once, created by authenticated requests on
   * demand; requests for more get 503. Databases named in `databases` are not counted.
   */
  readonly maxDatabases: number;
  /**
   * @default 86400000 (24 h) — a `client:<id>` channel stays its first user's this long after
   * that user last used it, then the claim is deleted and the id is free again.
   */
  readonly clientClaimTtlMs: number;
  /**
   * @default 1000 — `client:<id>` channels one user holds per database; claiming one more
   * frees that user's least recently used claim.
   */
  readonly maxClientClaimsPerUser: number;
  /** @default 300000 — a parked poll is answered empty after this long (Tryton's own is 5 min). */
  readonly pollTimeoutMs: number;
  /** @default 5000 — a reader without a cursor first gets the messages of this last window. */
  readonly noCursorWindowMs: number;
  /** @default 100 — most channels in one poll or subscription request. */
  readonly maxChannels: number;
  /** @default 1 MiB — largest HTTP request body. */
  readonly maxBodyBytes: number;
  /** @default 64 KiB — largest message (its JSON). */
  readonly maxMessageBytes: number;
  /** @default 1000 — most messages one request may publish, and the cap of max_messages. */
  readonly maxBatch: number;
  /** @default 10000 — parked polls in total; more get 429. */
  readonly maxParkedPolls: number;
  /** @default 256 — parked polls per user and database; more get 429. */
  readonly maxParkedPollsPerUser: number;
  /** @default 10000 — recent messages kept in memory per database. */
  readonly tailSize: number;
  /** @default 64 MiB — bytes of recent messages kept in memory per database (oldest evicted first). */
  readonly tailMaxBytes: number;
  /** @default 1 MiB — largest batched long-poll answer (`max_messages`); one message is always sent. */
  readonly maxResponseBytes: number;
  /** @default 8 MiB — long-poll answers of one user not yet read by its clients; past it, polls get 429. */
  readonly maxUnsentBytesPerUser: number;
  /** @default 15000 — a request body must arrive within this long of the request's start (408). */
  readonly bodyTimeoutMs: number;
  /** @default 8 MiB — request body bytes of one user being received at once (429 past it). */
  readonly maxBodyBytesPerUser: number;
  /** @default 10000 — open TCP connections (HTTP and WebSocket); more are answered 503 and closed (0: no cap). */
  readonly maxConnections: number;
  /** @default 2000 — open TCP connections from one remote address (0: no cap); raise it behind a proxy. */
  readonly maxConnectionsPerAddress: number;
  /** @default 32 — requests of one connection received and not yet answered; more close the connection. */
  readonly maxPipelinedRequests: number;
  /** @default "" — a Bearer token that may read /metrics (besides admin tokens); at least 16 characters. */
  readonly metricsToken: string;
  /** @default false — true lets anyone who reaches the port read /metrics. */
  readonly metricsPublic: boolean;
  /** @default 60000 — how often retention runs. */
  readonly retentionIntervalMs: number;
  /** @default [] — origins allowed by CORS (with credentials); "*" is refused. */
  readonly corsOrigins: readonly string[];
  /** @default [] — channel read rules beyond the built-in ones. */
  readonly accessRules: readonly AccessRule[];
  /** @default "tidings_session" — cookie holding a token, for browsers. */
  readonly sessionCookie: string;
  /** @default "info" */
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** @default 10000 — how long shutdown waits for in-flight requests before closing sockets. */
  readonly shutdownGraceMs: number;
  /** @default 15000 — SSE keep-alive comment interval. */
  readonly sseKeepAliveMs: number;
  /** @default 2000 — the reconnection delay SSE tells EventSource clients (`retry:`). */
  readonly sseRetryMs: number;
  readonly ws: WebSocketOptions;
  readonly commands: CommandOptions;
  /** @default undefined — Tryton sessions are checked only by an embedder's `sessionVerifier`. */
  readonly trytonSessions: TrytonSessionOptions | undefined;
  /** @default undefined — tidings is not the bus of a Tryton server. */
  readonly tryton: TrytonOptions | undefined;
}

export const DEFAULT_RETENTION: RetentionOptions = { maxAgeHours: 24, maxCount: 1_000_000 };
export const DEFAULT_DATABASE: DatabaseOptions = { bus: true, retention: DEFAULT_RETENTION };
/** What `trytonSessions` takes once its url is set. */
export const DEFAULT_TRYTON_SESSIONS: Omit<TrytonSessionOptions, "url"> = { maxAgeSeconds: 2_592_000, timeoutSeconds: 604_800, cacheSeconds: 30 };
/** What `tryton` takes once its url is set. */
export const DEFAULT_TRYTON: Omit<TrytonOptions, "url"> = { chat: "authenticated", pollIntervalMs: 2_000 };

/**
 * The defaults. `trytonSessions` is listed with an empty url (off; it resolves to
 * undefined) so that the CLI, which derives its flags from this object, reaches its keys.
 */
export const DEFAULTS: Omit<TidingsOptions, "store" | "secret" | "trytonSessions" | "tryton"> & {
  readonly trytonSessions: TrytonSessionOptions;
  readonly tryton: TrytonOptions;
} = {
  host: "127.0.0.1",
  port: 8080,
  dataDir: "./data",
  databases: { tidings: DEFAULT_DATABASE },
  maxDatabases: 1000,
  clientClaimTtlMs: 24 * 3_600_000,
  maxClientClaimsPerUser: 1000,
  pollTimeoutMs: 300_000,
  noCursorWindowMs: 5_000,
  maxChannels: 100,
  maxBodyBytes: 1024 * 1024,
  maxMessageBytes: 64 * 1024,
  maxBatch: 1000,
  maxParkedPolls: 10_000,
  // Tryton users keep many tabs open, one parked poll each (Tryton has no limit): the total
  // cap bounds sockets and memory; this one only keeps a single user from taking all of it.
  maxParkedPollsPerUser: 256,
  tailSize: 10_000,
  tailMaxBytes: 64 * 1024 * 1024,
  maxResponseBytes: 1024 * 1024,
  maxUnsentBytesPerUser: 8 * 1024 * 1024,
  bodyTimeoutMs: 15_000,
  maxBodyBytesPerUser: 8 * 1024 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 2_000,
  maxPipelinedRequests: 32,
  metricsToken: "",
  metricsPublic: false,
  retentionIntervalMs: 60_000,
  corsOrigins: [],
  accessRules: [],
  sessionCookie: "tidings_session",
  logLevel: "info",
  shutdownGraceMs: 10_000,
  sseKeepAliveMs: 15_000,
  sseRetryMs: 2_000,
  ws: {
    maxPayload: 64 * 1024,
    maxBufferedBytes: 4 * 1024 * 1024,
    maxFramesPerSecond: 200,
    pingIntervalMs: 30_000,
    maxSubscriptions: 1000,
    maxPendingRequests: 100,
    authTimeoutMs: 10_000,
  },
  commands: {
    maxArgsBytes: 256 * 1024,
    maxResultBytes: 1024 * 1024,
    maxOpenPerAddress: 1000,
    leaseMs: 30_000,
    defaultDeadlineMs: 86_400_000,
    maxInFlight: 32,
    expiryIntervalMs: 1000,
  },
  trytonSessions: { url: "", ...DEFAULT_TRYTON_SESSIONS },
  tryton: { url: "", ...DEFAULT_TRYTON },
};

export type PartialDatabaseOptions = { bus?: boolean; retention?: Partial<RetentionOptions> };

/** What callers may pass: any subset, nested objects merged field by field. */
export type TidingsOptionsInput = Partial<Omit<TidingsOptions, "ws" | "commands" | "databases" | "trytonSessions" | "tryton">> & {
  ws?: Partial<WebSocketOptions>;
  trytonSessions?: Partial<TrytonSessionOptions> | undefined;
  tryton?: Partial<TrytonOptions> | undefined;
  commands?: Partial<CommandOptions>;
  databases?: Record<string, PartialDatabaseOptions> | readonly string[];
};

/** Merges with the defaults once and rejects contradictions with a sentence a user understands. */
export function resolveOptions(input: TidingsOptionsInput = {}): TidingsOptions {
  const dataDir = input.dataDir ?? DEFAULTS.dataDir;
  // Shapes first (JSON from a config file or an environment variable is not typed).
  if (input.databases !== undefined) checkDatabases(input.databases);
  if (input.accessRules !== undefined) checkAccessRules(input.accessRules);
  const databases = resolveDatabases(input.databases);
  const tryton = resolveTryton(input.tryton, databases);
  const o: TidingsOptions = {
    ...DEFAULTS,
    ...stripUndefined(input),
    dataDir,
    store: input.store ?? `sqlite:${dataDir.replace(/\/$/, "")}/tidings.db`,
    secret: input.secret,
    databases,
    ws: { ...DEFAULTS.ws, ...stripUndefined(input.ws ?? {}) },
    commands: { ...DEFAULTS.commands, ...stripUndefined(input.commands ?? {}) },
    // `tryton.url` also accepts Tryton sessions; `trytonSessions.url` (the older option) wins.
    trytonSessions: resolveTrytonSessions(tryton === undefined ? input.trytonSessions : { url: tryton.url, ...stripUndefined(input.trytonSessions ?? {}) }),
    // trytond lets any logged-in user read chat channels (DESIGN 5.1 keeps the rest deny-by-default).
    accessRules:
      tryton?.chat === "authenticated"
        ? [...(input.accessRules ?? DEFAULTS.accessRules), { channels: "chat:*", databases: Object.keys(databases) }]
        : (input.accessRules ?? DEFAULTS.accessRules),
    tryton,
  };
  const positive: Array<[string, number]> = [
    ["port", o.port + 1],
    ["pollTimeoutMs", o.pollTimeoutMs],
    ["maxDatabases", o.maxDatabases],
    ["clientClaimTtlMs", o.clientClaimTtlMs],
    ["maxClientClaimsPerUser", o.maxClientClaimsPerUser],
    ["maxChannels", o.maxChannels],
    ["maxBodyBytes", o.maxBodyBytes],
    ["maxMessageBytes", o.maxMessageBytes],
    ["maxBatch", o.maxBatch],
    ["maxParkedPolls", o.maxParkedPolls],
    ["maxParkedPollsPerUser", o.maxParkedPollsPerUser],
    ["tailSize", o.tailSize],
    ["tailMaxBytes", o.tailMaxBytes],
    ["maxResponseBytes", o.maxResponseBytes],
    ["maxUnsentBytesPerUser", o.maxUnsentBytesPerUser],
    ["bodyTimeoutMs", o.bodyTimeoutMs],
    ["maxBodyBytesPerUser", o.maxBodyBytesPerUser],
    ["maxPipelinedRequests", o.maxPipelinedRequests],
    ["ws.authTimeoutMs", o.ws.authTimeoutMs],
    ["retentionIntervalMs", o.retentionIntervalMs],
    ["ws.maxPayload", o.ws.maxPayload],
    ["ws.maxBufferedBytes", o.ws.maxBufferedBytes],
    ["ws.maxFramesPerSecond", o.ws.maxFramesPerSecond],
    ["ws.pingIntervalMs", o.ws.pingIntervalMs],
    ["ws.maxSubscriptions", o.ws.maxSubscriptions],
    ["ws.maxPendingRequests", o.ws.maxPendingRequests],
    ["sseKeepAliveMs", o.sseKeepAliveMs],
    ["commands.maxArgsBytes", o.commands.maxArgsBytes],
    ["commands.maxResultBytes", o.commands.maxResultBytes],
    ["commands.maxOpenPerAddress", o.commands.maxOpenPerAddress],
    ["commands.leaseMs", o.commands.leaseMs],
    ["commands.defaultDeadlineMs", o.commands.defaultDeadlineMs],
    ["commands.maxInFlight", o.commands.maxInFlight],
    ["commands.expiryIntervalMs", o.commands.expiryIntervalMs],
  ];
  for (const [name, value] of positive) {
    if (!Number.isFinite(value) || value <= 0) configError(`${name} must be a positive number, got ${value}.`);
  }
  if (o.noCursorWindowMs < 0) configError("noCursorWindowMs must not be negative.");
  for (const [name, value] of [["maxConnections", o.maxConnections], ["maxConnectionsPerAddress", o.maxConnectionsPerAddress]] as const) {
    if (!Number.isInteger(value) || value < 0) configError(`${name} must be a non-negative integer (0: no cap), got ${value}.`);
  }
  if (o.maxBodyBytesPerUser < o.maxBodyBytes) {
    configError(`maxBodyBytesPerUser (${o.maxBodyBytesPerUser}) cannot be below maxBodyBytes (${o.maxBodyBytes}): one largest body could never arrive.`);
  }
  if (o.metricsToken !== "" && o.metricsToken.length < 16) configError("metricsToken must have at least 16 characters.");
  if (o.maxMessageBytes > o.maxBodyBytes) {
    configError(`maxMessageBytes (${o.maxMessageBytes}) cannot exceed maxBodyBytes (${o.maxBodyBytes}): such a message could never be sent.`);
  }
  if (o.corsOrigins.includes("*")) {
    configError('corsOrigins cannot contain "*": credentials are sent, so list the origins explicitly.');
  }
  if (o.secret !== undefined && o.secret.length < 32) {
    configError("The secret must have at least 32 characters.");
  }
  return o;
}

function resolveDatabases(
  input: Record<string, PartialDatabaseOptions> | readonly string[] | undefined,
): Record<string, DatabaseOptions> {
  if (input === undefined) return { ...DEFAULTS.databases };
  const entries: Array<[string, PartialDatabaseOptions]> = Array.isArray(input)
    ? (input as readonly string[]).map((name) => [name, {}])
    : Object.entries(input as Record<string, PartialDatabaseOptions>);
  if (entries.length === 0) configError("At least one database must be configured.");
  const out: Record<string, DatabaseOptions> = {};
  for (const [name, opts] of entries) {
    if (name !== "*" && !isValidDbName(name)) {
      configError(`Database name ${JSON.stringify(name)} is invalid: use 1 to 63 of A-Z a-z 0-9 _ . -`);
    }
    const retention = { ...DEFAULT_RETENTION, ...stripUndefined(opts.retention ?? {}) };
    if (retention.maxAgeHours < 0 || retention.maxCount < 0) configError(`Retention of ${name} must not be negative.`);
    out[name] = { bus: opts.bus ?? true, retention };
  }
  return out;
}

function resolveTrytonSessions(input: Partial<TrytonSessionOptions> | undefined): TrytonSessionOptions | undefined {
  const given = stripUndefined(input ?? {});
  if (given.url === undefined || given.url === "") {
    if (Object.keys(given).some((k) => k !== "url")) {
      configError("trytonSessions.url is required to check Tryton sessions: Tryton's PostgreSQL server, e.g. postgres://tryton@db-host:5432/.");
    }
    return undefined;
  }
  const o: TrytonSessionOptions = { ...DEFAULT_TRYTON_SESSIONS, ...given, url: given.url };
  const problem = trytonServerUrlProblem(o.url);
  if (problem !== null) configError(`trytonSessions.url ${problem}`);
  for (const key of ["maxAgeSeconds", "timeoutSeconds"] as const) {
    if (!Number.isFinite(o[key]) || o[key] <= 0) configError(`trytonSessions.${key} must be a positive number, got ${o[key]}.`);
  }
  if (!Number.isFinite(o.cacheSeconds) || o.cacheSeconds < 0) configError(`trytonSessions.cacheSeconds must not be negative, got ${o.cacheSeconds}.`);
  return o;
}

function resolveTryton(input: Partial<TrytonOptions> | undefined, databases: Record<string, DatabaseOptions>): TrytonOptions | undefined {
  const given = stripUndefined(input ?? {});
  if (given.url === undefined || given.url === "") {
    if (Object.keys(given).some((k) => k !== "url")) configError("tryton.url is required: Tryton's PostgreSQL server, e.g. postgres://tryton@db-host:5432/.");
    return undefined;
  }
  const o: TrytonOptions = { ...DEFAULT_TRYTON, ...given, url: given.url };
  const problem = trytonServerUrlProblem(o.url);
  if (problem !== null) configError(`tryton.url ${problem}`);
  if (o.chat !== "authenticated" && o.chat !== "rules") configError(`tryton.chat must be "authenticated" or "rules", got ${JSON.stringify(o.chat)}.`);
  if (!Number.isFinite(o.pollIntervalMs) || o.pollIntervalMs <= 0) configError(`tryton.pollIntervalMs must be a positive number, got ${o.pollIntervalMs}.`);
  // What trytond publishes is ingested whether or not anyone polls: the databases must be named.
  if ("*" in databases) configError('tryton.url needs the Tryton databases listed in databases ("*" cannot be listened to).');
  return o;
}

/** Why `url` cannot be Tryton's PostgreSQL server URL (a sentence's end), or null when it can. */
export function trytonServerUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "must be a PostgreSQL URL such as postgres://tryton@db-host:5432/.";
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return "must be a PostgreSQL URL such as postgres://tryton@db-host:5432/.";
  }
  if (parsed.pathname !== "" && parsed.pathname !== "/") {
    return "must not name a database: the tidings database name is the Tryton database name.";
  }
  return null;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function configError(message: string): never {
  throw new TidingsError("TIDINGS_ERR_CONFIG", message);
}
