import type { TSchema } from "./type.js";

/**
 * The runtime check of a schema built with ./type.ts: every problem with the path of the
 * value (`accessRules[0].channel`, `databases.app.bus`), not only the first, so that one
 * edit fixes a config file. What it understands is what ./type.ts builds.
 */

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

function join(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (path === "" ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`;
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
    return branches.map((b) => describeSchema(b as TSchema)).join(" or ");
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

/** The basic JSON type a value has, in JSON Schema's words. */
function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Whole numbers are checked as such after the type, so that 1.5 is told it needs to be whole. */
function typeMatches(type: unknown, v: unknown): boolean {
  if (type === undefined) return true;
  const t = jsonType(v);
  return type === t || ((type === "number" || type === "integer") && (t === "integer" || t === "number"));
}

/** Every problem of `value` against `schema` (an empty list: the value is accepted). */
export function check(schema: TSchema, value: unknown, path = ""): Issue[] {
  const issues: Issue[] = [];
  visit(schema as Schema, value, path, issues, undefined);
  return issues;
}

function visit(s: Schema, v: unknown, path: string, out: Issue[], inherited: string | undefined): void {
  const code = typeof s.errorCode === "string" ? s.errorCode : inherited;
  const fail = (message: string): void => {
    out.push({ path, message: typeof s.errorMessage === "string" ? s.errorMessage : message, ...(code ? { code } : {}) });
  };
  const wrong = (): void => fail(`must be ${describeSchema(s as TSchema)}, got ${shown(v)}.`);

  if ("const" in s) {
    if (v !== s.const) wrong();
    return;
  }
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Schema[];
    const results = branches.map((b) => {
      const found: Issue[] = [];
      visit(b, v, path, found, code);
      return found;
    });
    if (results.some((r) => r.length === 0)) return;
    // The branch meant says more than "must be A or B": among those of the value's own type,
    // the one whose required keys the value has most of (the first on a tie).
    let best = -1;
    let bestScore = -1;
    branches.forEach((b, i) => {
      if (b.type === undefined || !typeMatches(b.type, v)) return;
      const required = (b.required as string[] | undefined) ?? [];
      const score = isObject(v) ? required.filter((k) => v[k] !== undefined).length : 0;
      if (score > bestScore) [best, bestScore] = [i, score];
    });
    if (best >= 0) out.push(...results[best]!);
    else wrong();
    return;
  }
  if (!typeMatches(s.type, v) || (typeof v === "number" && !Number.isFinite(v))) return wrong();
  switch (s.type) {
    case "string": {
      const text = v as string;
      if (typeof s.minLength === "number" && text.length < s.minLength) return wrong();
      if (typeof s.maxLength === "number" && text.length > s.maxLength) return fail(`must have at most ${s.maxLength} characters.`);
      if (typeof s.pattern === "string" && !new RegExp(s.pattern).test(text)) return fail(`must match ${s.pattern}, got ${shown(v)}.`);
      return;
    }
    case "number":
    case "integer": {
      const n = v as number;
      if (s.type === "integer" && !Number.isInteger(n)) return fail(`must be a whole number, got ${shown(v)}.`);
      if (typeof s.exclusiveMinimum === "number" && !(n > s.exclusiveMinimum)) return wrong();
      if (typeof s.minimum === "number" && n < s.minimum) return wrong();
      if (typeof s.maximum === "number" && n > s.maximum) return wrong();
      return;
    }
    case "array": {
      const list = v as unknown[];
      if (typeof s.minItems === "number" && list.length < s.minItems) return fail(`must have at least ${s.minItems} item${s.minItems === 1 ? "" : "s"}.`);
      if (typeof s.maxItems === "number" && list.length > s.maxItems) return fail(`may have at most ${s.maxItems} items.`);
      if (isObject(s.items)) list.forEach((item, i) => visit(s.items as Schema, item, `${path}[${i}]`, out, code));
      return;
    }
    case "object": {
      const obj = v as Record<string, unknown>;
      const properties = isObject(s.properties) ? (s.properties as Record<string, Schema>) : {};
      const missing = ((s.required as string[] | undefined) ?? []).filter((k) => obj[k] === undefined);
      if (missing.length > 0) {
        const names = missing.map((k) => JSON.stringify(k)).join(" and ");
        const hint = typeof s.requiredMessage === "string" ? `: ${s.requiredMessage}` : ".";
        // `requiredCode` when the object declares one: a command without "method" is a bad command.
        const missingCode = typeof s.requiredCode === "string" ? s.requiredCode : code;
        out.push({ path, message: `has no ${names} field${missing.length > 1 ? "s" : ""}${hint}`, ...(missingCode ? { code: missingCode } : {}) });
      }
      for (const [key, value] of Object.entries(obj)) {
        const where = join(path, key);
        const known = properties[key];
        if (known !== undefined) {
          if (value !== undefined) visit(known, value, where, out, code);
        } else if (isObject(s.additionalProperties)) {
          visit(s.additionalProperties as Schema, value, where, out, code);
        } else if (s.additionalProperties === false) {
          const hint = closest(key, Object.keys(properties));
          const message = hint !== undefined ? `(did you mean ${JSON.stringify(hint)}?)` : `(known: ${Object.keys(properties).join(", ")})`;
          out.push({ path: where, message, unknownKey: true, ...(code ? { code } : {}) });
        }
      }
      return;
    }
  }
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
