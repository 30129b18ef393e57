import { Type, type SchemaOptions, type TOptional, type TSchema } from "@sinclair/typebox";

/**
 * Every option of a tidings server, declared once: its type and constraints, default,
 * unit, one-line description, and (derived from its key unless given) its flag and
 * TIDINGS_* variable. From this come the `TidingsOptions` type and `DEFAULTS`
 * (src/options.ts), the check of config files, flags, variables and embedders' input with
 * the path of every error, the CLI flags (src/cli/config.ts), and the test that
 * docs/configuration.md documents each option.
 *
 * The schema is the input form: every key optional, unknown keys refused. Durations are
 * milliseconds (keys end in `Ms`), sizes bytes; flags and variables take them with a unit.
 */

/** What options carry besides JSON Schema: how flags read them, and their help text. */
export interface OptionAnnotations {
  /** A duration in milliseconds (`5m` in flags) or a size in bytes (`64KiB`). */
  readonly unit?: "duration" | "bytes";
  /** The flag without `--`, where the derived one would not do (`--no-…` reads as a negation). */
  readonly flag?: string;
  /** The default as help and docs show it, when it is not a constant. */
  readonly defaultText?: string;
}

function option<T extends TSchema>(make: (o: SchemaOptions) => T, description: string, defaultValue: unknown, more: SchemaOptions & OptionAnnotations = {}): TOptional<T> {
  // TypeBox's Optional of a generic T is a conditional type; of a plain schema it is this.
  return Type.Optional(make({ description, ...(defaultValue !== undefined ? { default: defaultValue } : {}), ...more })) as TOptional<T>;
}

const positive = { exclusiveMinimum: 0 } as const;
const nonNegative = { minimum: 0 } as const;

const text = (description: string, defaultValue: string | undefined, more: SchemaOptions & OptionAnnotations = {}) => option(Type.String, description, defaultValue, more);
const count = (description: string, defaultValue: number, more: SchemaOptions = positive) => option(Type.Integer, description, defaultValue, more);
const flag = (description: string, defaultValue: boolean) => option(Type.Boolean, description, defaultValue);
const duration = (description: string, defaultValue: number, more: SchemaOptions & OptionAnnotations = positive) =>
  option(Type.Number, description, defaultValue, { unit: "duration", ...more });
const bytes = (description: string, defaultValue: number, more: SchemaOptions = positive) =>
  option(Type.Integer, description, defaultValue, { unit: "bytes", ...more });
const seconds = (description: string, defaultValue: number, more: SchemaOptions = positive) => option(Type.Number, description, defaultValue, more);
const group = <P extends Record<string, TSchema>>(properties: P) => Type.Optional(Type.Object(properties, { additionalProperties: false }));

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const ACCESS_RULE_SCHEMA = Type.Object(
  {
    channels: Type.String({ minLength: 1, description: "channel pattern: `*` matches anything, `{user}` is the caller's id" }),
    users: Type.Optional(Type.Array(Type.String(), { description: "user ids (as text) the rule is for; absent: every user" })),
    databases: Type.Optional(Type.Array(Type.String(), { description: "databases the rule is for; absent: every database" })),
  },
  { additionalProperties: false },
);

export const RETENTION_SCHEMA = Type.Object(
  {
    maxAgeHours: Type.Optional(Type.Number({ ...nonNegative, default: 24, description: "messages older than this many hours are removed (0: no age limit)" })),
    maxCount: Type.Optional(Type.Integer({ ...nonNegative, default: 1_000_000, description: "at most this many messages per database (0: no count limit)" })),
  },
  { additionalProperties: false },
);

export const DATABASE_SCHEMA = Type.Object(
  {
    bus: Type.Optional(Type.Boolean({ default: true, description: "false answers 501 on the bus routes, which makes Tryton clients stop polling" })),
    retention: Type.Optional(RETENTION_SCHEMA),
  },
  { additionalProperties: false },
);

export const OPTIONS_SCHEMA = Type.Object(
  {
    host: text("interface to listen on", "127.0.0.1", { minLength: 1 }),
    port: count("TCP port (0: any free port)", 8080, { minimum: 0, maximum: 65535 }),
    dataDir: text("directory of the SQLite file and the generated secret", "./data", { minLength: 1 }),
    store: text("store URL: sqlite:<path>, memory:, postgres://…, redis://…", undefined, { minLength: 1, defaultText: "sqlite:<dataDir>/tidings.db" }),
    secret: text("HS256 token secret shared by all instances (at least 32 characters)", undefined, {
      minLength: 32,
      errorMessage: "must have at least 32 characters.",
      defaultText: "generated in <dataDir>/secret",
    }),
    databases: Type.Optional(
      Type.Union([Type.Array(Type.String(), { minItems: 1 }), Type.Record(Type.String(), DATABASE_SCHEMA)], {
        description: "databases served: a comma list (`*` accepts any name) or a JSON object of names to options",
        default: { tidings: {} },
        defaultText: "tidings",
      }),
    ),
    maxDatabases: count("databases a `*` entry serves at once, created on demand (503 past it)", 1000),
    clientClaimTtlMs: duration("a client:<id> channel stays its user's this long after its last use", 24 * 3_600_000),
    maxClientClaimsPerUser: count("client:<id> channels one user holds per database (the least recently used is freed past it)", 1000),
    pollTimeoutMs: duration("a parked long-poll is answered empty after this long", 300_000),
    noCursorWindowMs: duration("a reader without a cursor first gets the messages of this last window", 5_000, { ...nonNegative, flag: "cursorless-window" }),
    maxChannels: count("most channels in one poll or subscription", 100),
    maxBodyBytes: bytes("largest HTTP request body", 1024 * 1024),
    maxMessageBytes: bytes("largest message (its JSON)", 64 * 1024),
    maxBatch: count("most messages per publish request, and the cap of max_messages", 1000),
    maxParkedPolls: count("parked polls in total (more get 429)", 10_000),
    // Tryton users keep many tabs open, one parked poll each (Tryton has no limit): the total
    // cap bounds sockets and memory; this one only keeps a single user from taking all of it.
    maxParkedPollsPerUser: count("parked polls per user and database (more get 429)", 256),
    tailSize: count("recent messages kept in memory per database", 10_000),
    tailMaxBytes: bytes("bytes of recent messages kept in memory per database", 64 * 1024 * 1024),
    maxResponseBytes: bytes("largest batched long-poll answer (one message is always sent)", 1024 * 1024),
    maxUnsentBytesPerUser: bytes("long-poll answer bytes of one user not yet read by its clients (429 past it)", 8 * 1024 * 1024),
    bodyTimeoutMs: duration("a request body must arrive within this long (408 past it)", 15_000),
    maxBodyBytesPerUser: bytes("request body bytes of one user arriving at once (429 past it)", 8 * 1024 * 1024),
    maxConnections: count("open connections in total, HTTP and WebSocket (503 past it; 0: no cap)", 10_000, nonNegative),
    maxConnectionsPerAddress: count("open connections from one address (503 past it; 0: no cap)", 2_000, nonNegative),
    maxPipelinedRequests: count("unanswered requests on one connection (more close it)", 32),
    trustedProxies: count(
      "reverse proxies in front of tidings that append X-Forwarded-For (trytond's [web] num_proxies): the client's address is the one the outermost saw",
      0,
      nonNegative,
    ),
    metricsToken: text("Bearer token that may read /metrics, besides admin tokens (at least 16 characters)", "", {
      pattern: "^(|.{16,})$",
      errorMessage: "must have at least 16 characters.",
    }),
    metricsPublic: flag("let anyone who reaches the port read /metrics", false),
    retentionIntervalMs: duration("how often retention runs", 60_000),
    corsOrigins: option((o) => Type.Array(Type.String({ minLength: 1 }), o), "origins allowed by CORS, with credentials, comma separated", []),
    accessRules: option((o) => Type.Array(ACCESS_RULE_SCHEMA, o), 'channel read rules, as JSON: [{"channels":"chat:*","users":["7"]}]', []),
    sessionCookie: text("name of the cookie holding a token", "tidings_session", { minLength: 1 }),
    logLevel: Type.Optional(
      Type.Union(
        LOG_LEVELS.map((l) => Type.Literal(l)),
        { title: "log level", description: `log level: ${LOG_LEVELS.join(", ")}`, default: "info" },
      ),
    ),
    shutdownGraceMs: duration("how long shutdown waits for in-flight requests", 10_000, nonNegative),
    sseKeepAliveMs: duration("SSE keep-alive comment interval", 15_000),
    sseRetryMs: duration("reconnection delay told to EventSource clients (retry:)", 2_000, nonNegative),
    ws: group({
      maxPayload: bytes("largest WebSocket frame accepted", 64 * 1024),
      maxBufferedBytes: bytes("a socket with more unsent data is closed (4008)", 4 * 1024 * 1024),
      maxFramesPerSecond: count("frames a client may send per second (4029 past it)", 200),
      pingIntervalMs: duration("WebSocket ping interval; a peer silent for two intervals is dropped", 30_000),
      maxSubscriptions: count("most channels one socket may subscribe to", 1000),
      maxPendingRequests: count("requests of one socket answered at once (429 past it)", 100),
      authTimeoutMs: duration("a socket not authenticated this long after opening is closed (4001)", 10_000),
    }),
    commands: group({
      maxArgsBytes: bytes("largest JSON of a command's arguments", 256 * 1024),
      maxResultBytes: bytes("largest JSON of a command's result or error", 1024 * 1024),
      maxOpenPerAddress: count("most unfinished commands per address", 1000),
      leaseMs: duration("how long a client's claim on a command holds unrenewed", 30_000),
      defaultDeadlineMs: duration("deadline of a command sent without one", 86_400_000),
      maxInFlight: count("commands one connection holds (delivered or running) at a time", 32),
      expiryIntervalMs: duration("how often due deadlines are swept", 1000),
    }),
    trytonSessions: group({
      url: text("Tryton's PostgreSQL server (no database), to accept Tryton's Session header: postgres://tryton@db-host:5432/", "", { defaultText: "none (off)" }),
      maxAgeSeconds: seconds("a Tryton session older than this is refused (trytond's session.max_age)", 2_592_000),
      timeoutSeconds: seconds("a Tryton session unused this long is refused", 604_800),
      cacheSeconds: seconds("how long an accepted Tryton session is reused without asking its database (0: never)", 30, nonNegative),
    }),
    tryton: group({
      url: text("Tryton's PostgreSQL server (no database): tidings becomes the bus of the listed Tryton databases, Tryton sessions accepted", "", {
        defaultText: "none (off)",
      }),
      chat: Type.Optional(
        Type.Union([Type.Literal("authenticated"), Type.Literal("rules")], {
          description: "who reads chat:<resource> channels: authenticated (any user, as trytond) or rules",
          default: "authenticated",
        }),
      ),
      pollIntervalMs: duration("how often a standby instance tries to lead a Tryton database, and the adapter's table is re-read", 2_000),
    }),
  },
  { additionalProperties: false },
);
