import type { AccessRule } from "./core/access.js";
import { TidingsError } from "./errors.js";
import { isValidDbName } from "./core/channels.js";
import { OPTIONS_SCHEMA, RETENTION_SCHEMA } from "./options-schema.js";
import { check, formatIssues } from "./protocol/schema/check.js";
import type { Static, TSchema } from "@sinclair/typebox";

/*
 * The types and defaults of the options come from their one declaration,
 * src/options-schema.ts (descriptions, units and constraints are there).
 */

type Input = Static<typeof OPTIONS_SCHEMA>;
/** Every key present, as after resolveOptions. */
type Filled<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

export type RetentionOptions = Filled<Static<typeof RETENTION_SCHEMA>>;

export interface DatabaseOptions {
  readonly bus: boolean;
  readonly retention: RetentionOptions;
}

export type WebSocketOptions = Filled<NonNullable<Input["ws"]>>;
export type CommandOptions = Filled<NonNullable<Input["commands"]>>;
/** Checking Tryton's `Session` header against Tryton's own PostgreSQL database (src/auth/tryton-pg-verifier.ts). */
export type TrytonSessionOptions = Filled<NonNullable<Input["trytonSessions"]>>;
/** Making tidings the bus of Tryton databases (src/tryton/ingest.ts, docs/tryton.md). */
export type TrytonOptions = Filled<NonNullable<Input["tryton"]>>;

type Structured = "store" | "secret" | "databases" | "corsOrigins" | "accessRules" | "ws" | "commands" | "trytonSessions" | "tryton";

/** Every option of a tidings server, resolved: each present, with its default when not given. */
export type TidingsOptions = Filled<Omit<Input, Structured>> & {
  readonly store: string;
  readonly secret: string | undefined;
  readonly databases: Readonly<Record<string, DatabaseOptions>>;
  readonly corsOrigins: readonly string[];
  readonly accessRules: readonly AccessRule[];
  readonly ws: WebSocketOptions;
  readonly commands: CommandOptions;
  /** Off (undefined) unless its url is set. */
  readonly trytonSessions: TrytonSessionOptions | undefined;
  /** Off (undefined) unless its url is set. */
  readonly tryton: TrytonOptions | undefined;
};

export type PartialDatabaseOptions = { bus?: boolean; retention?: Partial<RetentionOptions> };

/** What callers may pass: any subset, nested objects merged field by field. */
export type TidingsOptionsInput = { [K in Exclude<keyof Input, "databases" | "corsOrigins" | "accessRules">]?: Input[K] | undefined } & {
  databases?: Record<string, PartialDatabaseOptions> | readonly string[];
  corsOrigins?: readonly string[];
  accessRules?: readonly AccessRule[];
};

/** The declared defaults of an object schema's properties, groups recursed into. */
function defaultsOf(schema: TSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, property] of Object.entries((schema.properties ?? {}) as Record<string, TSchema>)) {
    if (property.default !== undefined) out[key] = property.default;
    else if (property.type === "object" && property.properties !== undefined) out[key] = defaultsOf(property);
  }
  return out;
}

const declared = defaultsOf(OPTIONS_SCHEMA);

export const DEFAULT_RETENTION = defaultsOf(RETENTION_SCHEMA) as RetentionOptions;
export const DEFAULT_DATABASE: DatabaseOptions = { bus: true, retention: DEFAULT_RETENTION };
const { url: _sessionsUrl, ...sessionDefaults } = declared.trytonSessions as TrytonSessionOptions;
/** What `trytonSessions` takes once its url is set. */
export const DEFAULT_TRYTON_SESSIONS: Omit<TrytonSessionOptions, "url"> = sessionDefaults;
const { url: _trytonUrl, ...trytonDefaults } = declared.tryton as TrytonOptions;
/** What `tryton` takes once its url is set. */
export const DEFAULT_TRYTON: Omit<TrytonOptions, "url"> = trytonDefaults;

/**
 * The defaults. `trytonSessions` and `tryton` are listed with an empty url (off; they
 * resolve to undefined) so that the CLI reaches their keys.
 */
export const DEFAULTS = { ...declared, databases: { tidings: DEFAULT_DATABASE } } as unknown as Omit<
  TidingsOptions,
  "store" | "secret" | "trytonSessions" | "tryton"
> & {
  readonly trytonSessions: TrytonSessionOptions;
  readonly tryton: TrytonOptions;
};

/** The declared options of `input` (an embedder's input may carry a logger, a store…). */
function declaredPart(input: object): Record<string, unknown> {
  const known = (OPTIONS_SCHEMA.properties ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(input).filter(([k, v]) => k in known && v !== undefined));
}

/** Every problem of `input` against the declaration, one sentence each; throws when there are any. */
export function assertOptionsShape(input: unknown, where = ""): void {
  const issues = check(OPTIONS_SCHEMA, input);
  if (issues.length === 0) return;
  configError(`${where}${formatIssues(issues, "The options", "option")}`);
}

/** Merges with the defaults once and rejects contradictions with a sentence a user understands. */
export function resolveOptions(input: TidingsOptionsInput = {}): TidingsOptions {
  // Types and ranges first (JSON from a config file or an environment variable is not typed).
  assertOptionsShape(declaredPart(input));
  const dataDir = input.dataDir ?? DEFAULTS.dataDir;
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
  // What one option cannot say alone: relations between options.
  if (o.maxBodyBytesPerUser < o.maxBodyBytes) {
    configError(`maxBodyBytesPerUser (${o.maxBodyBytesPerUser}) cannot be below maxBodyBytes (${o.maxBodyBytes}): one largest body could never arrive.`);
  }
  if (o.maxMessageBytes > o.maxBodyBytes) {
    configError(`maxMessageBytes (${o.maxMessageBytes}) cannot exceed maxBodyBytes (${o.maxBodyBytes}): such a message could never be sent.`);
  }
  if (o.corsOrigins.includes("*")) {
    configError('corsOrigins cannot contain "*": credentials are sent, so list the origins explicitly.');
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
