import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { assertOptionsShape, type TidingsOptionsInput } from "../options.js";
import { OPTIONS_SCHEMA } from "../options-schema.js";
import { check, formatIssues } from "../protocol/schema/check.js";
import type { TSchema } from "@sinclair/typebox";
import { TidingsError } from "../errors.js";
import { formatBytes, formatDuration, parseBytes, parseDurationMs } from "../units.js";

export { formatBytes, formatDuration, parseBytes, parseDurationMs };

/**
 * The CLI's view of the server options: every option declared in src/options-schema.ts,
 * reachable as a flag, a TIDINGS_* environment variable and a config-file key, merged as
 * flags > environment > config file > defaults (src/options.ts).
 *
 * Names come from the key unless the declaration gives a flag: `pollTimeoutMs` becomes
 * `--poll-timeout` / `TIDINGS_POLL_TIMEOUT` (a duration takes its unit in the text),
 * `ws.maxPayload` becomes `--ws-max-payload` / `TIDINGS_WS_MAX_PAYLOAD`.
 */

/** How a flag's or variable's text is read; declared by the option's schema and unit. */
export type OptionKind = "string" | "int" | "duration" | "bytes" | "bool" | "list" | "json" | "enum" | "list-or-json";

export interface OptionSpec {
  /** Path in TidingsOptionsInput, dotted for nested groups: `port`, `ws.maxPayload`. */
  readonly key: string;
  /** `--poll-timeout` */
  readonly flag: string;
  /** `TIDINGS_POLL_TIMEOUT` */
  readonly env: string;
  readonly kind: OptionKind;
  readonly description: string;
  /** The option's declaration: type, constraints, default. */
  readonly schema: TSchema;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kindOf(schema: TSchema): OptionKind {
  if (schema.unit === "duration" || schema.unit === "bytes") return schema.unit;
  const branches = (schema.anyOf ?? []) as TSchema[];
  if (branches.length > 0) return branches.every((b) => "const" in b) ? "enum" : "list-or-json";
  switch (schema.type) {
    case "integer":
    case "number":
      return "int";
    case "boolean":
      return "bool";
    case "array":
      return (schema.items as TSchema).type === "string" ? "list" : "json";
    case "object":
      return "json";
    default:
      return "string";
  }
}

function specFor(key: string, schema: TSchema): OptionSpec {
  const kind = kindOf(schema);
  // Durations take a unit in flags and env ("300s"), so the name drops its "Ms".
  const parts = key.split(".").map((p) => kebab(kind === "duration" ? p.replace(/Ms$/, "") : p));
  const name = typeof schema.flag === "string" ? schema.flag : parts.join("-");
  return {
    key,
    flag: `--${name}`,
    env: `TIDINGS_${name.replace(/-/g, "_").toUpperCase()}`,
    kind,
    description: typeof schema.description === "string" ? schema.description : key,
    schema,
  };
}

/** A group of options (ws, commands, …): an object schema with declared keys. */
function isGroup(schema: TSchema): boolean {
  return schema.type === "object" && schema.properties !== undefined;
}

/** Every option, in the order of the declaration; nested groups flattened. */
export const OPTION_SPECS: readonly OptionSpec[] = (() => {
  const specs: OptionSpec[] = [];
  const walk = (schema: TSchema, prefix: string): void => {
    for (const [k, property] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (isGroup(property)) walk(property, `${prefix}${k}.`);
      else specs.push(specFor(prefix + k, property));
    }
  };
  walk(OPTIONS_SCHEMA, "");
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

/** A flag's or environment variable's text → the option's value, checked against its declaration. */
export function parseText(spec: OptionSpec, text: string, where: string): unknown {
  const value = readText(spec, text, where);
  const issues = check(spec.schema, value, spec.key);
  if (issues.length > 0) {
    // An option with a title speaks of itself by it: "TIDINGS_LOG_LEVEL: log level must be one of …".
    const title = spec.schema.title;
    const named = typeof title === "string" ? issues.map((i) => (i.path === spec.key ? { ...i, path: title } : i)) : issues;
    configError(`${where}: ${formatIssues(named, spec.key, "option")}`);
  }
  return value;
}

function readText(spec: OptionSpec, text: string, where: string): unknown {
  switch (spec.kind) {
    case "string":
      return text;
    case "enum":
      return text.trim();
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
    case "list-or-json":
      return /^\s*[[{]/.test(text) ? parseJson(text, where) : parseList(text);
  }
}

/** Config-file durations and sizes may be strings with a unit (`"5m"`, `"8MiB"`): made numbers in place. */
function convertUnits(doc: Record<string, unknown>, file: string): void {
  for (const spec of OPTION_SPECS) {
    if (spec.kind !== "duration" && spec.kind !== "bytes") continue;
    const path = spec.key.split(".");
    const leaf = path.pop()!;
    let holder: unknown = doc;
    for (const part of path) holder = typeof holder === "object" && holder !== null ? (holder as Record<string, unknown>)[part] : undefined;
    if (typeof holder !== "object" || holder === null) continue;
    const value = (holder as Record<string, unknown>)[leaf];
    if (typeof value !== "string") continue;
    const where = `${file}: ${spec.key}`;
    (holder as Record<string, unknown>)[leaf] = spec.kind === "duration" ? parseDurationMs(value, where, "milliseconds") : parseBytes(value, where);
  }
}

// ---- sources ------------------------------------------------------------------------------

type Layer = Map<string, unknown>;

/**
 * Reads a JSON config file shaped like TidingsOptionsInput. Every unknown key and wrong
 * type is refused at once, each with its path: `tidings.json: unknown option
 * "accessRules[0].channel" (did you mean "channels"?); databases.app.bus must be true or false, got "no".`
 */
export function readConfigFile(path: string): Layer {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    configError(`Cannot read the config file ${path}: ${(e as Error).message}`);
  }
  const doc = parseJson(text, `config file ${path}`);
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) configError(`The config file ${path} must hold a JSON object.`);
  convertUnits(doc as Record<string, unknown>, path);
  assertOptionsShape(doc, `${path}: `);
  const layer: Layer = new Map();
  for (const spec of OPTION_SPECS) {
    let value: unknown = doc;
    for (const part of spec.key.split(".")) value = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[part] : undefined;
    if (value !== undefined) layer.set(spec.key, value);
  }
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

/** The default as help and docs/configuration.md show it: `5m`, `64KiB`, `none`. */
export function defaultTextOf(spec: OptionSpec): string {
  if (typeof spec.schema.defaultText === "string") return spec.schema.defaultText;
  const value = spec.schema.default;
  if (spec.kind === "duration" && typeof value === "number") return formatDuration(value);
  if (spec.kind === "bytes" && typeof value === "number") return formatBytes(value);
  if (value === "" || value === undefined) return "none";
  return Array.isArray(value) ? value.join(",") || "none" : String(value);
}

function placeholder(kind: OptionKind): string {
  if (kind === "list-or-json" || kind === "list") return "list";
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
      new Option(`${spec.flag} <${placeholder(spec.kind)}>`, `${spec.description} [${spec.env}; default: ${defaultTextOf(spec)}]`).helpGroup(
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
