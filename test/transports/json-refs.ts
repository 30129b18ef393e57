/** Local `$ref`s of the API description documents (OpenAPI, AsyncAPI), for their tests. */

export type Json = Record<string, any>;

/** Where a local `$ref` points, following references; undefined when it resolves to nothing. */
export function resolve(doc: Json, ref: string): Json | undefined {
  if (!ref.startsWith("#/")) return undefined;
  const unescape = (part: string) => part.replace(/~1/g, "/").replace(/~0/g, "~");
  const target = ref.slice(2).split("/").map(unescape).reduce<any>((o, part) => o?.[part], doc);
  return typeof target?.$ref === "string" ? resolve(doc, target.$ref) : target;
}

/** Every `$ref` of the document, and where it points. */
export function refs(doc: Json): Array<[string, Json | undefined]> {
  const found: string[] = [];
  JSON.stringify(doc, (k, v) => (k === "$ref" ? (found.push(v as string), v) : v));
  return found.map((ref) => [ref, resolve(doc, ref)]);
}
