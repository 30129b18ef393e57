/**
 * Schema builders that produce plain JSON Schema (2020-12) objects and carry their
 * TypeScript type, named and shaped as TypeBox's `Type.*` so that `@sinclair/typebox` can
 * replace this file: `import { Type, type Static } from "@sinclair/typebox"` (it is not a
 * dependency yet). One schema gives the static type, the runtime check (./check.ts) and the
 * JSON Schema that the OpenAPI document embeds. Only the subset tidings uses is here.
 *
 * Besides JSON Schema's keywords a schema may carry `errorMessage` (the sentence's end when
 * the value is refused, as ajv-errors spells it), `requiredMessage` (what follows "has no
 * \"x\" field: "), `errorCode` (the TidingsError code) and `requiredCode` (the code of a
 * missing field);
 * options also carry `unit` and `flag` (src/options-schema.ts).
 */

/** Keywords of ours that are not JSON Schema (left out of the OpenAPI document). */
export const OWN_KEYWORDS: ReadonlySet<string> = new Set(["errorMessage", "errorCode", "requiredMessage", "requiredCode", "unit", "flag", "defaultText"]);

/** Marks an object property that may be absent (TypeBox's `Type.Optional`). */
export const OptionalKind = Symbol.for("tidings/Optional");

/** Keywords any schema may carry. */
export interface SchemaOptions {
  readonly description?: string;
  readonly default?: unknown;
  readonly errorMessage?: string;
  readonly errorCode?: string;
  readonly requiredMessage?: string;
  readonly requiredCode?: string;
  readonly [keyword: string]: unknown;
}

export interface TSchema {
  /** Type-level only: what a value that passes the check is. */
  readonly static: unknown;
  readonly [keyword: string]: unknown;
}

export interface TString extends TSchema {
  readonly type: "string";
  readonly static: string;
}
export interface TNumber extends TSchema {
  readonly type: "number";
  readonly static: number;
}
export interface TInteger extends TSchema {
  readonly type: "integer";
  readonly static: number;
}
export interface TBoolean extends TSchema {
  readonly type: "boolean";
  readonly static: boolean;
}
export interface TNull extends TSchema {
  readonly type: "null";
  readonly static: null;
}
export interface TUnknown extends TSchema {
  readonly static: unknown;
}
export interface TLiteral<V extends string | number | boolean> extends TSchema {
  readonly const: V;
  readonly static: V;
}
export interface TArray<T extends TSchema> extends TSchema {
  readonly type: "array";
  readonly items: T;
  readonly static: Array<Static<T>>;
}
export interface TUnion<T extends readonly TSchema[]> extends TSchema {
  readonly anyOf: T;
  readonly static: Static<T[number]>;
}
export interface TRecord<T extends TSchema> extends TSchema {
  readonly type: "object";
  readonly additionalProperties: T;
  readonly static: Record<string, Static<T>>;
}

export type TOptional<T extends TSchema> = T & { readonly [OptionalKind]: "Optional" };
export type TProperties = Record<string, TSchema>;

type OptionalKeys<P extends TProperties> = { [K in keyof P]: P[K] extends { readonly [OptionalKind]: "Optional" } ? K : never }[keyof P];
type RequiredKeys<P extends TProperties> = Exclude<keyof P, OptionalKeys<P>>;
type Evaluate<T> = { [K in keyof T]: T[K] } & {};
export type ObjectStatic<P extends TProperties> = Evaluate<
  { [K in RequiredKeys<P>]: Static<P[K]> } & { [K in OptionalKeys<P>]?: Static<P[K]> }
>;

export interface TObject<P extends TProperties = TProperties> extends TSchema {
  readonly type: "object";
  readonly properties: P;
  readonly required?: readonly string[];
  readonly static: ObjectStatic<P>;
}

/** The TypeScript type of the values a schema accepts. */
export type Static<T extends TSchema> = T["static"];

function make<T extends TSchema>(schema: object): T {
  return schema as unknown as T;
}

export const Type = {
  String: (options: SchemaOptions = {}): TString => make({ ...options, type: "string" }),
  Number: (options: SchemaOptions = {}): TNumber => make({ ...options, type: "number" }),
  Integer: (options: SchemaOptions = {}): TInteger => make({ ...options, type: "integer" }),
  Boolean: (options: SchemaOptions = {}): TBoolean => make({ ...options, type: "boolean" }),
  Null: (options: SchemaOptions = {}): TNull => make({ ...options, type: "null" }),
  Unknown: (options: SchemaOptions = {}): TUnknown => make({ ...options }),
  Literal: <V extends string | number | boolean>(value: V, options: SchemaOptions = {}): TLiteral<V> =>
    make({ ...options, const: value }),
  Array: <T extends TSchema>(items: T, options: SchemaOptions = {}): TArray<T> => make({ ...options, type: "array", items }),
  Union: <T extends readonly TSchema[]>(anyOf: [...T], options: SchemaOptions = {}): TUnion<T> => make({ ...options, anyOf }),
  /** TypeBox's `Type.Record(Type.String(), value)`. */
  Record: <T extends TSchema>(value: T, options: SchemaOptions = {}): TRecord<T> =>
    make({ ...options, type: "object", additionalProperties: value }),
  Object: <P extends TProperties>(properties: P, options: SchemaOptions = {}): TObject<P> => {
    const required = Object.keys(properties).filter((k) => !isOptional(properties[k]!));
    return make({ ...options, type: "object", properties, ...(required.length > 0 ? { required } : {}) });
  },
  Optional: <T extends TSchema>(schema: T): TOptional<T> => make({ ...schema, [OptionalKind]: "Optional" }),
};

export function isOptional(schema: TSchema): boolean {
  return (schema as unknown as Record<symbol, unknown>)[OptionalKind] === "Optional";
}
