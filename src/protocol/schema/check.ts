import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { Value, ValueErrorType, type ValueError } from "@sinclair/typebox/value";

/**
 * Schemas are TypeBox's (`Type.*`); TypeBox checks values and lists what is wrong. This
 * file only says it in sentences: every problem with the path of the value
 * (`accessRules[0].channel`, `databases.app.bus`), in the order of the value's keys, so
 * that one edit fixes a config file.
 *
 * Besides JSON Schema's keywords a schema may carry `errorMessage` (the sentence's end when
 * the value is refused), `requiredMessage` (what follows "has no \"x\" field: "),
 * `errorCode` (the TidingsError code, inherited by what the schema contains) and
 * `requiredCode` (the code of a missing field); options also carry `unit`, `flag` and
 * `defaultText` (src/options-schema.ts). TypeBox ignores them all.
 */

/** Keywords of ours that are not JSON Schema (left out of the OpenAPI document). */
export const OWN_KEYWORDS: ReadonlySet<string> = new Set(["errorMessage", "errorCode", "requiredMessage", "requiredCode", "unit", "flag", "defaultText"]);

export interface Issue {
  /** `databases.app.bus`, `messages[2]`; "" for the value itself. */
  readonly path: string;
  /** The end of a sentence that starts with the path: `must be true or false, got "no".` */
  readonly message: string;
  /** An unknown key: the path names it, `message` holds only the suggestion. */
  readonly unknownKey?: boolean;
  /** The `errorCode` of the nearest schema that has one. */
  readonly code?: string;
}

type Schema = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What the schema accepts, as a noun phrase: "a string", "true or false", `one of "a", "b"`. */
export function describeSchema(schema: TSchema): string {
  const s = schema as Schema;
  if ("const" in s) return JSON.stringify(s.const);
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Schema[];
    if (branches.every((b) => "const" in b)) return `one of ${branches.map((b) => JSON.stringify(b.const)).join(", ")}`;
    return [...new Set(branches.map((b) => describeSchema(b as TSchema)))].join(" or ");
  }
  switch (s.type) {
    case "string":
      return s.minLength === 1 ? "a non-empty string" : "a string";
    case "boolean":
      return "true or false";
    case "null":
      return "null";
    case "array":
      return isObject(s.items) && (s.items as Schema).type === "string" ? "a list of strings" : "a list";
    case "object":
      return "an object";
    case "integer":
    case "number": {
      // Ranges are said of numbers; a fraction where a whole number is needed has its own sentence.
      if (s.exclusiveMinimum === 0) return "a positive number";
      if (typeof s.minimum === "number" && typeof s.maximum === "number") return `a number from ${s.minimum} to ${s.maximum}`;
      if (s.minimum === 0) return "a number of at least 0";
      return s.type === "integer" ? "a whole number" : "a number";
    }
    default:
      return "any JSON value";
  }
}

/** The closest of `known` to `key` (edit distance at most 2, case ignored), for "did you mean". */
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

/** Whether a value is of a schema's JSON type (any number counts for "integer": 1.5 is told it must be whole). */
function typeMatches(type: unknown, v: unknown): boolean {
  switch (type) {
    case undefined:
      return true;
    case "null":
      return v === null;
    case "array":
      return Array.isArray(v);
    case "object":
      return isObject(v);
    case "integer":
      return typeof v === "number";
    default:
      return typeof v === type;
  }
}

/** `/accessRules/0/channel` → ["accessRules", "0", "channel"] (RFC 6901 unescaped). */
function segments(pointer: string): string[] {
  return pointer === "" ? [] : pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The values along a pointer's segments, starting with the root. */
function valuesAlong(root: unknown, keys: readonly string[]): unknown[] {
  const out = [root];
  for (const key of keys) {
    const at = out[out.length - 1];
    out.push(typeof at === "object" && at !== null ? (at as Record<string, unknown>)[key] : undefined);
  }
  return out;
}

/** `accessRules[0].channel`, `databases["my db"]`: as a user would write it, after `prefix`. */
function display(prefix: string, keys: readonly string[], values: readonly unknown[]): string {
  let path = prefix;
  keys.forEach((key, i) => {
    if (Array.isArray(values[i])) path += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) path = path === "" ? key : `${path}.${key}`;
    else path += `[${JSON.stringify(key)}]`;
  });
  return path;
}

/** The schema a key of a value checked against `schema` is checked against. */
function child(schema: Schema | undefined, key: string): Schema | undefined {
  if (schema === undefined) return undefined;
  const properties = schema.properties as Record<string, Schema> | undefined;
  if (properties?.[key] !== undefined) return properties[key];
  if (isObject(schema.patternProperties)) return Object.values(schema.patternProperties)[0] as Schema;
  if (isObject(schema.additionalProperties)) return schema.additionalProperties;
  if (isObject(schema.items)) return schema.items;
  return undefined;
}

function codeAlong(chain: readonly (Schema | undefined)[], inherited: string | undefined): string | undefined {
  let code = inherited;
  for (const s of chain) if (typeof s?.errorCode === "string") code = s.errorCode;
  return code;
}

interface Found {
  readonly issue: Issue;
  /** Where it sorts: the positions of its keys in the value; a missing field sorts first in its object. */
  readonly order: number[];
}

/** Turns TypeBox's errors (below `root`, a schema at `rootKeys`) into issues. */
function collect(root: Schema, rootKeys: readonly string[], errors: Iterable<ValueError>, value: unknown, prefix: string, inherited: string | undefined, out: Found[]): void {
  const missing = new Map<string, { keys: string[]; names: string[]; parent: (Schema | undefined)[] }>();
  const absent: string[] = [];
  const said = new Set<string>();
  const positionOf = (keys: readonly string[], values: readonly unknown[]): number[] =>
    keys.map((key, i) => (Array.isArray(values[i]) ? Number(key) : isObject(values[i]) ? Object.keys(values[i] as object).indexOf(key) : 0));

  for (const error of errors) {
    const keys = segments(error.path);
    // The schemas from the root (a union's branch, under a union) to the error's node, for codes.
    const chain: (Schema | undefined)[] = [root];
    for (const key of keys.slice(rootKeys.length)) chain.push(child(chain[chain.length - 1], key));
    const values = valuesAlong(value, keys);

    if (error.type === ValueErrorType.ObjectRequiredProperty) {
      const parentKeys = keys.slice(0, -1);
      const at = parentKeys.join("/");
      const entry = missing.get(at) ?? { keys: parentKeys, names: [], parent: chain.slice(0, -1) };
      const name = keys[keys.length - 1]!;
      if (!entry.names.includes(name)) entry.names.push(name);
      missing.set(at, entry);
      absent.push(error.path);
      continue;
    }
    // TypeBox also checks a missing field's schema against undefined: the field is missing, that is all.
    if (absent.some((p) => error.path === p || error.path.startsWith(`${p}/`))) continue;
    if (said.has(error.path) && error.type !== ValueErrorType.ObjectAdditionalProperties) continue;
    said.add(error.path);

    const order = positionOf(keys, values);
    if (error.type === ValueErrorType.ObjectAdditionalProperties) {
      const known = Object.keys((error.schema as Schema).properties ?? {});
      const hint = closest(keys[keys.length - 1]!, known);
      const message = hint !== undefined ? `(did you mean ${JSON.stringify(hint)}?)` : `(known: ${known.join(", ")})`;
      const code = codeAlong(chain.slice(0, -1), inherited);
      out.push({ issue: { path: display(prefix, keys, values), message, unknownKey: true, ...(code ? { code } : {}) }, order });
      continue;
    }
    const code = codeAlong(chain, inherited);
    if (error.type === ValueErrorType.Union) {
      const branch = bestBranch(error);
      if (branch !== undefined) {
        collect(branch.schema, keys, branch.errors, value, prefix, code, out);
        continue;
      }
    }
    const s = error.schema as Schema;
    const sentence = typeof s.errorMessage === "string" ? s.errorMessage : sentenceOf(error);
    out.push({ issue: { path: display(prefix, keys, values), message: sentence, ...(code ? { code } : {}) }, order });
  }

  for (const { keys, names, parent } of missing.values()) {
    const object = parent[parent.length - 1];
    const hint = typeof object?.requiredMessage === "string" ? `: ${object.requiredMessage}` : ".";
    // `requiredCode` when the object declares one: a command without "method" is a bad command.
    const code = typeof object?.requiredCode === "string" ? object.requiredCode : codeAlong(parent, inherited);
    const values = valuesAlong(value, keys);
    const message = `has no ${names.map((k) => JSON.stringify(k)).join(" and ")} field${names.length > 1 ? "s" : ""}${hint}`;
    out.push({ issue: { path: display(prefix, keys, values), message, ...(code ? { code } : {}) }, order: [...positionOf(keys, values), -1] });
  }
}

/**
 * The branch of a refused union that the value meant, which says more than "must be A or
 * B": among those of the value's own type, the one whose required keys the value has most
 * of (the first on a tie). None when the value has none of the branches' types.
 */
function bestBranch(error: ValueError): { schema: Schema; errors: Iterable<ValueError> } | undefined {
  const branches = (error.schema as Schema).anyOf as Schema[];
  const v = error.value;
  let best = -1;
  let bestScore = -1;
  branches.forEach((b, i) => {
    if ("const" in b || b.type === undefined || !typeMatches(b.type, v)) return;
    const required = (b.required as string[] | undefined) ?? [];
    const score = isObject(v) ? required.filter((k) => v[k] !== undefined).length : 0;
    if (score > bestScore) [best, bestScore] = [i, score];
  });
  return best < 0 ? undefined : { schema: branches[best]!, errors: error.errors[best]! };
}

function sentenceOf(error: ValueError): string {
  const s = error.schema as Schema;
  const v = error.value;
  switch (error.type) {
    case ValueErrorType.Integer:
      if (typeof v === "number" && Number.isFinite(v)) return `must be a whole number, got ${shown(v)}.`;
      break;
    case ValueErrorType.StringMaxLength:
      return `must have at most ${s.maxLength as number} characters.`;
    case ValueErrorType.StringPattern:
      return `must match ${s.pattern as string}, got ${shown(v)}.`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${s.minItems as number} item${s.minItems === 1 ? "" : "s"}.`;
    case ValueErrorType.ArrayMaxItems:
      return `may have at most ${s.maxItems as number} items.`;
  }
  return `must be ${describeSchema(s as TSchema)}, got ${shown(v)}.`;
}

function issuesOf(schema: TSchema, errors: Iterable<ValueError>, value: unknown, prefix: string): Issue[] {
  const found: Found[] = [];
  collect(schema as Schema, [], errors, value, prefix, undefined, found);
  const before = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  };
  return found.sort((a, b) => before(a.order, b.order)).map((f) => f.issue);
}

/**
 * Every problem of `value` against `schema` (an empty list: the value is accepted); paths
 * start with `prefix` (the option's key when one option is checked alone).
 */
export function check(schema: TSchema, value: unknown, prefix = ""): Issue[] {
  if (Value.Check(schema, value)) return [];
  return issuesOf(schema, Value.Errors(schema, value), value, prefix);
}

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** `check` with TypeBox's compiled checker, for the schemas checked on every request. */
export function checkCompiled(schema: TSchema, value: unknown): Issue[] {
  let checker = compiled.get(schema);
  if (checker === undefined) compiled.set(schema, (checker = TypeCompiler.Compile(schema)));
  if (checker.Check(value)) return [];
  return issuesOf(schema, checker.Errors(value), value, "");
}

/**
 * One problem as a sentence. `subject` names the value at path "" ("The body"); `noun` is
 * what an unknown key is called ("option", "field").
 */
export function formatIssue(issue: Issue, subject: string, noun = "key"): string {
  if (issue.unknownKey) return `unknown ${noun} ${JSON.stringify(issue.path)} ${issue.message}`;
  return `${issue.path === "" ? subject : issue.path} ${issue.message}`;
}

/** Every problem in one sentence, separated by semicolons. */
export function formatIssues(issues: readonly Issue[], subject: string, noun = "key"): string {
  return `${issues.map((i) => formatIssue(i, subject, noun).replace(/\.$/, "")).join("; ")}.`;
}
