import { TidingsError } from "./errors.js";

/**
 * Shape checks of the structured options (access rules, per-database options), with the
 * path of the first error: `accessRules[0]: unknown key "channel"; did you mean "channels"?`.
 * A typo here used to load silently and fail every request later.
 */

type Check = (value: unknown, path: string) => void;

function fail(path: string, message: string): never {
  throw new TidingsError("TIDINGS_ERR_CONFIG", `${path}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The closest of `known` to `key` (edit distance at most 2, or a case or plural slip). */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** An object with exactly these keys (checked by their own checks), required ones present. */
function object(fields: Record<string, Check>, required: readonly string[] = []): Check {
  return (value, path) => {
    if (!isObject(value)) fail(path, `must be an object, got ${JSON.stringify(value)}.`);
    for (const key of Object.keys(value)) {
      if (!(key in fields)) {
        const hint = closest(key, Object.keys(fields));
        fail(path, `unknown key ${JSON.stringify(key)}${hint ? `; did you mean ${JSON.stringify(hint)}?` : `; known keys: ${Object.keys(fields).join(", ")}.`}`);
      }
    }
    for (const key of required) if (value[key] === undefined) fail(path, `${JSON.stringify(key)} is required.`);
    for (const [key, check] of Object.entries(fields)) if (value[key] !== undefined) check(value[key], `${path}.${key}`);
  };
}

const nonEmptyString: Check = (v, path) => {
  if (typeof v !== "string" || v.length === 0) fail(path, `must be a non-empty string, got ${JSON.stringify(v)}.`);
};
const stringList: Check = (v, path) => {
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) fail(path, `must be a list of strings (ids as text, e.g. ["7"]), got ${JSON.stringify(v)}.`);
};
const boolean: Check = (v, path) => {
  if (typeof v !== "boolean") fail(path, `must be true or false, got ${JSON.stringify(v)}.`);
};
const nonNegative: Check = (v, path) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(path, `must be a number of at least 0, got ${JSON.stringify(v)}.`);
};

const accessRule = object({ channels: nonEmptyString, users: stringList, databases: stringList }, ["channels"]);
const databaseOptions = object({ bus: boolean, retention: object({ maxAgeHours: nonNegative, maxCount: nonNegative }) });

/** `accessRules`: a list of `{channels, users?, databases?}`. */
export function checkAccessRules(value: unknown, path = "accessRules"): void {
  if (!Array.isArray(value)) fail(path, `must be a list of rules such as [{"channels":"chat:*"}], got ${JSON.stringify(value)}.`);
  value.forEach((rule, i) => accessRule(rule, `${path}[${i}]`));
}

/** `databases`: a list of names, or an object of names to `{bus?, retention?}`. */
export function checkDatabases(value: unknown, path = "databases"): void {
  if (Array.isArray(value)) {
    value.forEach((name, i) => {
      if (typeof name !== "string") fail(`${path}[${i}]`, `must be a database name, got ${JSON.stringify(name)}.`);
    });
    return;
  }
  if (!isObject(value)) fail(path, `must be a list of names or an object of names to options, got ${JSON.stringify(value)}.`);
  for (const [name, opts] of Object.entries(value)) databaseOptions(opts ?? {}, `${path}.${name}`);
}
