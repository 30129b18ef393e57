import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { DEFAULTS, type TidingsOptionsInput } from "../options.js";
import { TidingsError } from "../errors.js";
import { formatBytes, formatDuration, parseBytes, parseDurationMs } from "../units.js";
import { checkAccessRules, checkDatabases } from "../options-check.js";

export { formatBytes, formatDuration, parseBytes, parseDurationMs };

/**
 * The CLI's view of the server options: every option of TidingsOptions, reachable as a
 * flag, a TIDINGS_* environment variable and a config-file key, merged as
 * flags > environment > config file > defaults (src/options.ts).
 *
 * The table is derived from DEFAULTS, so an option added there is reachable here without
 * an edit: `pollTimeoutMs` becomes `--poll-timeout` / `TIDINGS_POLL_TIMEOUT`,
 * `ws.maxPayload` becomes `--ws-max-payload` / `TIDINGS_WS_MAX_PAYLOAD`.
 */

export type OptionKind = "string" | "int" | "duration" | "bytes" | "bool" | "list" | "json" | "level" | "databases";

export interface OptionSpec {
  /** Path in TidingsOptionsInput, dotted for nested groups: `port`, `ws.maxPayload`. */
  readonly key: string;
  /** `--poll-timeout` */
  readonly flag: string;
  /** `TIDINGS_POLL_TIMEOUT` */
  readonly env: string;
  readonly kind: OptionKind;
  readonly description: string;
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Short help texts; the full reference is docs/configuration.md. */
const DESCRIPTIONS: Record<string, string> = {
  host: "interface to listen on",
  port: "TCP port (0: any free port)",
  dataDir: "directory of the SQLite file and the generated secret",
  store: "store URL: sqlite:<path>, memory:, postgres://…, redis://…",
  secret: "HS256 token secret shared by all instances (at least 32 characters)",
  databases: "databases served: a comma list (`*` accepts any name) or a JSON object",
  maxDatabases: "databases a `*` entry serves at once, created on demand (503 past it)",
  clientClaimTtlMs: "a client:<id> channel stays its user's this long after its last use",
  maxClientClaimsPerUser: "client:<id> channels one user holds per database (the least recently used is freed past it)",
  pollTimeoutMs: "a parked long-poll is answered empty after this long",
  noCursorWindowMs: "a reader without a cursor first gets the messages of this last window",
  maxChannels: "most channels in one poll or subscription",
  maxBodyBytes: "largest HTTP request body",
  maxMessageBytes: "largest message (its JSON)",
  maxBatch: "most messages per publish request, and the cap of max_messages",
  maxParkedPolls: "parked polls in total (more get 429)",
  maxParkedPollsPerUser: "parked polls per user and database (more get 429)",
  tailSize: "recent messages kept in memory per database",
  tailMaxBytes: "bytes of recent messages kept in memory per database",
  maxResponseBytes: "largest batched long-poll answer (one message is always sent)",
  maxUnsentBytesPerUser: "long-poll answer bytes of one user not yet read by its clients (429 past it)",
  bodyTimeoutMs: "a request body must arrive within this long (408 past it)",
  maxBodyBytesPerUser: "request body bytes of one user arriving at once (429 past it)",
  maxConnections: "open connections in total, HTTP and WebSocket (503 past it; 0: no cap)",
  maxConnectionsPerAddress: "open connections from one address (503 past it; 0: no cap)",
  maxPipelinedRequests: "unanswered requests on one connection (more close it)",
  metricsToken: "Bearer token that may read /metrics, besides admin tokens",
  metricsPublic: "let anyone who reaches the port read /metrics",
  retentionIntervalMs: "how often retention runs",
  corsOrigins: "origins allowed by CORS, comma separated",
  accessRules: "channel read rules, as JSON: [{\"channels\":\"chat:*\",\"users\":[\"7\"]}]",
  sessionCookie: "name of the cookie holding a token",
  logLevel: `log level: ${LEVELS.join(", ")}`,
  shutdownGraceMs: "how long shutdown waits for in-flight requests",
  sseKeepAliveMs: "SSE keep-alive comment interval",
  sseRetryMs: "reconnection delay told to EventSource clients (retry:)",
  "ws.maxPayload": "largest WebSocket frame accepted",
  "ws.maxBufferedBytes": "a socket with more unsent data is closed (4008)",
  "ws.maxFramesPerSecond": "frames a client may send per second (4029 past it)",
  "ws.pingIntervalMs": "WebSocket ping interval",
  "ws.maxSubscriptions": "most channels one socket may subscribe to",
  "ws.maxPendingRequests": "requests of one socket answered at once (429 past it)",
  "ws.authTimeoutMs": "a socket not authenticated this long after opening is closed (4001)",
  "commands.maxArgsBytes": "largest JSON of a command's arguments",
  "commands.maxResultBytes": "largest JSON of a command's result or error",
  "commands.maxOpenPerAddress": "most unfinished commands per address",
  "commands.leaseMs": "how long a client's claim on a command holds unrenewed",
  "commands.defaultDeadlineMs": "deadline of a command sent without one",
  "commands.maxInFlight": "commands one connection holds (delivered or running) at a time",
  "commands.expiryIntervalMs": "how often due deadlines are swept",
  "tryton.url": "Tryton's PostgreSQL server (no database): tidings becomes the bus of the listed Tryton databases, Tryton sessions accepted",
  "tryton.chat": "who reads chat:<resource> channels: authenticated (any user, as trytond) or rules",
  "tryton.pollIntervalMs": "how often a standby instance tries to lead a Tryton database, and the adapter's table is re-read",
  "trytonSessions.url": "Tryton's PostgreSQL server (no database), to accept Tryton's Session header: postgres://tryton@db-host:5432/",
  "trytonSessions.maxAgeSeconds": "a Tryton session older than this is refused (trytond's session.max_age)",
  "trytonSessions.timeoutSeconds": "a Tryton session unused this long is refused",
  "trytonSessions.cacheSeconds": "how long an accepted Tryton session is reused without asking its database",
};

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kindOf(key: string, value: unknown): OptionKind {
  const leaf = key.slice(key.lastIndexOf(".") + 1);
  if (key === "databases") return "databases";
  if (key === "logLevel") return "level";
  if (key === "accessRules") return "json";
  if (Array.isArray(value)) return "list";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") {
    if (leaf.endsWith("Ms")) return "duration";
    if (leaf.includes("Bytes") || leaf === "maxPayload") return "bytes";
    return "int";
  }
  if (typeof value === "object" && value !== null) return "json";
  return "string";
}

/** Names that cannot be derived: commander reads `--no-…` as the negation of a boolean. */
const NAMES: Record<string, string> = { noCursorWindowMs: "cursorless-window" };

function specFor(key: string, value: unknown): OptionSpec {
  const kind = kindOf(key, value);
  // Durations take a unit in flags and env ("300s"), so the name drops its "Ms".
  const parts = key.split(".").map((p) => kebab(kind === "duration" ? p.replace(/Ms$/, "") : p));
  const name = NAMES[key] ?? parts.join("-");
  return {
    key,
    flag: `--${name}`,
    env: `TIDINGS_${name.replace(/-/g, "_").toUpperCase()}`,
    kind,
    description: DESCRIPTIONS[key] ?? key,
  };
}

/** Every option, in the order of DEFAULTS; nested groups (ws, commands) flattened. */
export const OPTION_SPECS: readonly OptionSpec[] = (() => {
  const specs: OptionSpec[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix + k;
      // Groups of options are plain objects with their own defaults; databases is one option.
      if (key !== "databases" && typeof v === "object" && v !== null && !Array.isArray(v)) {
        walk(v as Record<string, unknown>, `${key}.`);
      } else {
        specs.push(specFor(key, v));
      }
    }
  };
  const { host, port, dataDir, ...rest } = DEFAULTS;
  walk({ host, port, dataDir }, "");
  specs.push(specFor("store", ""), specFor("secret", ""));
  walk(rest as Record<string, unknown>, "");
  return specs;
})();

const BY_KEY = new Map(OPTION_SPECS.map((s) => [s.key, s]));

// ---- parsing values -----------------------------------------------------------------------

function configError(message: string): never {
  throw new TidingsError("TIDINGS_ERR_CONFIG", message);
}

function parseInteger(text: string, where: string): number {
  if (!/^\d+$/.test(text.trim())) configError(`${where}: ${JSON.stringify(text)} is not a non-negative integer.`);
  return Number(text.trim());
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    configError(`${where}: ${JSON.stringify(text.slice(0, 80))} is not valid JSON.`);
  }
}

function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A flag's or environment variable's text → the option's value. */
export function parseText(spec: OptionSpec, text: string, where: string): unknown {
  switch (spec.kind) {
    case "string":
      return text;
    case "int":
      return parseInteger(text, where);
    case "duration":
      return parseDurationMs(text, where);
    case "bytes":
      return parseBytes(text, where);
    case "bool": {
      const t = text.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(t)) return true;
      if (["0", "false", "no", "off"].includes(t)) return false;
      return configError(`${where}: ${JSON.stringify(text)} is not a boolean (true or false).`);
    }
    case "list":
      return parseList(text);
    case "json":
      return parseJson(text, where);
    case "level":
      return checkLevel(text.trim(), where);
    case "databases":
      return /^\s*[[{]/.test(text) ? parseJson(text, where) : parseList(text);
  }
}

function checkLevel(value: unknown, where: string): string {
  if (typeof value !== "string" || !(LEVELS as readonly string[]).includes(value)) {
    configError(`${where}: log level must be one of ${LEVELS.join(", ")}.`);
  }
  return value;
}

/** A config-file value → the option's value: numbers as in TidingsOptions, or strings with units. */
function fromFile(spec: OptionSpec, value: unknown, where: string): unknown {
  if (typeof value === "string" && spec.kind === "duration") return parseDurationMs(value, where, "milliseconds");
  if (typeof value === "string" && spec.kind === "bytes") return parseBytes(value, where);
  const ok: Record<OptionKind, (v: unknown) => boolean> = {
    string: (v) => typeof v === "string",
    int: (v) => typeof v === "number" && Number.isInteger(v) && v >= 0,
    duration: (v) => typeof v === "number" && v >= 0,
    bytes: (v) => typeof v === "number" && Number.isInteger(v) && v >= 0,
    bool: (v) => typeof v === "boolean",
    list: (v) => Array.isArray(v) && v.every((s) => typeof s === "string"),
    json: () => true,
    level: (v) => typeof v === "string",
    databases: (v) => Array.isArray(v) || (typeof v === "object" && v !== null),
  };
  if (!ok[spec.kind](value)) configError(`${where}: ${JSON.stringify(value)} is not a valid ${spec.kind}.`);
  // The file's own path in the sentence: `tidings.json: accessRules[0]: unknown key "channel"…`.
  if (spec.key === "accessRules") checkAccessRules(value, where);
  if (spec.key === "databases") checkDatabases(value, where);
  if (spec.kind === "level") checkLevel(value, where);
  return value;
}

// ---- sources ------------------------------------------------------------------------------

type Layer = Map<string, unknown>;

/** Reads a JSON config file shaped like TidingsOptionsInput; unknown keys are refused (typos). */
export function readConfigFile(path: string): Layer {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    configError(`Cannot read the config file ${path}: ${(e as Error).message}`);
  }
  const doc = parseJson(text, `config file ${path}`);
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) configError(`The config file ${path} must hold a JSON object.`);
  const layer: Layer = new Map();
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix + k;
      const spec = BY_KEY.get(key);
      if (spec !== undefined) {
        layer.set(key, fromFile(spec, v, `${path}: ${key}`));
      } else if (typeof v === "object" && v !== null && !Array.isArray(v) && OPTION_SPECS.some((s) => s.key.startsWith(`${key}.`))) {
        walk(v as Record<string, unknown>, `${key}.`);
      } else {
        const hint = OPTION_SPECS.find((s) => s.key.toLowerCase().startsWith(key.toLowerCase().replace(/ms$/, "")));
        configError(`${path}: unknown option ${JSON.stringify(key)}${hint ? ` (did you mean ${JSON.stringify(hint.key)}?)` : ""}.`);
      }
    }
  };
  walk(doc as Record<string, unknown>, "");
  return layer;
}

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = new Map();
  for (const spec of OPTION_SPECS) {
    const text = env[spec.env];
    if (text !== undefined && text !== "") layer.set(spec.key, parseText(spec, text, spec.env));
  }
  return layer;
}

/** Values of the server-option flags commander parsed (absent flags are undefined). */
function flagLayer(flags: Record<string, unknown>): Layer {
  const layer: Layer = new Map();
  for (const spec of OPTION_SPECS) {
    const text = flags[attributeOf(spec)];
    if (typeof text === "string") layer.set(spec.key, parseText(spec, text, spec.flag));
  }
  return layer;
}

function attributeOf(spec: OptionSpec): string {
  return spec.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export interface ConfigSources {
  /** What commander parsed: server-option flags by attribute name, plus `config`. */
  readonly flags?: Record<string, unknown>;
  readonly env?: NodeJS.ProcessEnv;
}

/** Merges flags > TIDINGS_* > config file into an input for resolveOptions (which adds defaults). */
export function loadOptionsInput(sources: ConfigSources = {}): TidingsOptionsInput {
  const flags = sources.flags ?? {};
  const env = sources.env ?? process.env;
  const configPath = typeof flags.config === "string" ? flags.config : env.TIDINGS_CONFIG || undefined;
  const layers = [configPath !== undefined ? readConfigFile(configPath) : new Map<string, unknown>(), envLayer(env), flagLayer(flags)];
  const input: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [key, value] of layer) {
      const dot = key.indexOf(".");
      if (dot < 0) {
        input[key] = value;
      } else {
        const group = key.slice(0, dot);
        const current = input[group];
        const obj = (typeof current === "object" && current !== null ? current : {}) as Record<string, unknown>;
        obj[key.slice(dot + 1)] = value;
        input[group] = obj;
      }
    }
  }
  return input as TidingsOptionsInput;
}

// ---- commander ----------------------------------------------------------------------------

function defaultText(spec: OptionSpec): string {
  if (spec.key === "store") return "sqlite:<data-dir>/tidings.db";
  if (spec.key === "secret") return "generated in <data-dir>/secret";
  let value: unknown = DEFAULTS;
  for (const part of spec.key.split(".")) value = (value as Record<string, unknown>)[part];
  if (spec.kind === "duration" && typeof value === "number") return formatDuration(value);
  if (spec.kind === "bytes" && typeof value === "number") return formatBytes(value);
  if (spec.kind === "databases") return Object.keys(value as object).join(",");
  if (value === "") return "none";
  return Array.isArray(value) ? value.join(",") || "none" : String(value);
}

function placeholder(kind: OptionKind): string {
  if (kind === "databases" || kind === "list") return "list";
  if (kind === "json") return "json";
  if (kind === "duration") return "duration";
  if (kind === "bytes") return "size";
  return "value";
}

const GROUP_TITLES: Record<string, string> = { ws: "WebSocket", commands: "Command", trytonSessions: "Tryton session", tryton: "Tryton" };

function helpGroup(key: string): string {
  const dot = key.indexOf(".");
  if (dot < 0) return "Server options:";
  const group = key.slice(0, dot);
  return `${GROUP_TITLES[group] ?? group[0]!.toUpperCase() + group.slice(1)} options:`;
}

/** Adds `--config` and every server-option flag to a command (`serve`). */
export function addServerOptions(cmd: Command): Command {
  addConfigOption(cmd);
  for (const spec of OPTION_SPECS) {
    cmd.addOption(
      new Option(`${spec.flag} <${placeholder(spec.kind)}>`, `${spec.description} [${spec.env}; default: ${defaultText(spec)}]`).helpGroup(
        helpGroup(spec.key),
      ),
    );
  }
  return cmd;
}

export function addConfigOption(cmd: Command): Command {
  return cmd.option("--config <path>", "JSON config file [TIDINGS_CONFIG]");
}

/** The flags `token` and the client commands need to find the local secret: --secret, --data-dir, --config. */
export function addSecretOptions(cmd: Command): Command {
  addConfigOption(cmd);
  for (const key of ["secret", "dataDir"]) {
    const spec = BY_KEY.get(key)!;
    cmd.option(`${spec.flag} <value>`, `${spec.description} [${spec.env}]`);
  }
  return cmd;
}
