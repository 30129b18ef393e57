/**
 * The route table and its API description (issue 10): every route of the table is in the
 * OpenAPI document served at /openapi.json, with the schema its body is checked against;
 * the document holds together as OpenAPI 3.1 (no validator package is installed, so its
 * structure is checked here); the roles it declares hold; and a wrong field of a declared
 * body is named in the 400.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { jsonSchema } from "../../src/transports/http/openapi.js";
import { request, startServer, token } from "../helpers/server.js";
import { refs, type Json } from "./json-refs.js";


/** JSON Schema 2020-12 keywords the generated schemas may use. */
const SCHEMA_KEYWORDS = new Set([
  "type", "properties", "required", "additionalProperties", "patternProperties", "items", "anyOf", "const", "enum",
  "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
  "description", "default", "title", "$ref",
]);

/** Every problem of a schema: unknown keywords (our own must not leak), malformed parts. */
function schemaProblems(schema: unknown, at: string): string[] {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return [`${at}: not an object`];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(schema as Json)) {
    if (!SCHEMA_KEYWORDS.has(key)) problems.push(`${at}: unknown keyword ${key}`);
    if (key === "properties") for (const [name, sub] of Object.entries(value as Json)) problems.push(...schemaProblems(sub, `${at}.properties.${name}`));
    if (key === "items" || (key === "additionalProperties" && typeof value === "object")) problems.push(...schemaProblems(value, `${at}.${key}`));
    if (key === "patternProperties") for (const [pattern, sub] of Object.entries(value as Json)) problems.push(...schemaProblems(sub, `${at}.patternProperties[${JSON.stringify(pattern)}]`));
    if (key === "anyOf") (value as unknown[]).forEach((sub, i) => problems.push(...schemaProblems(sub, `${at}.anyOf[${i}]`)));
    if (key === "required" && !(Array.isArray(value) && value.every((k) => typeof k === "string" && k in ((schema as Json).properties ?? {})))) {
      problems.push(`${at}: required names keys that are not properties`);
    }
    if (key === "pattern") {
      try {
        new RegExp(value as string, "u");
      } catch {
        problems.push(`${at}: pattern is not a valid regular expression`);
      }
    }
  }
  return problems;
}

/** The structure OpenAPI 3.1 requires of what this document uses. */
function openApiProblems(doc: Json): string[] {
  const problems: string[] = [];
  if (doc.openapi !== "3.1.0") problems.push("openapi must be 3.1.0");
  if (typeof doc.info?.title !== "string" || typeof doc.info?.version !== "string") problems.push("info needs title and version");
  const schemes = Object.keys(doc.components?.securitySchemes ?? {});
  const ids = new Set<string>();
  for (const [ref, target] of refs(doc)) if (target === undefined) problems.push(`$ref ${ref} does not resolve`);
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    if (!path.startsWith("/")) problems.push(`${path}: must start with /`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries(item as Json)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!["get", "post", "put", "delete", "patch"].includes(method)) problems.push(`${where}: unknown method`);
      if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} repeated`);
      ids.add(op.operationId);
      if (Object.keys(op.responses ?? {}).length === 0) problems.push(`${where}: no responses`);
      for (const r of Object.values(op.responses as Json)) if (typeof (r as Json).description !== "string") problems.push(`${where}: a response lacks a description`);
      const params = (op.parameters ?? []) as Json[];
      for (const p of params) {
        if (!["path", "query", "header", "cookie"].includes(p.in)) problems.push(`${where}: parameter ${p.name} in ${p.in}`);
        if (p.in === "path" && (p.required !== true || !templated.includes(p.name))) problems.push(`${where}: path parameter ${p.name} not in the path or not required`);
      }
      for (const name of templated) if (!params.some((p) => p.in === "path" && p.name === name)) problems.push(`${where}: {${name}} is not declared`);
      for (const s of [...(op.security ?? []), ...(doc.security ?? [])]) for (const scheme of Object.keys(s)) if (!schemes.includes(scheme)) problems.push(`${where}: unknown security scheme ${scheme}`);
      const body = op.requestBody?.content?.["application/json"]?.schema;
      if (op.requestBody !== undefined) problems.push(...schemaProblems(body, `${where} body`));
    }
  }
  return problems;
}

describe("GET /openapi.json", () => {
  let server: TidingsServer;
  let doc: Json;
  before(async () => {
    server = await startServer();
    const res = await fetch(`${server.url}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    doc = JSON.parse(await res.text()) as Json;
  });
  after(() => server.close());

  it("describes every route of the table with the schema its body is checked against", () => {
    const missing: string[] = [];
    for (const route of server.router.routes) {
      const path = route.path.replace(/:([A-Za-z_]+)/g, "{$1}");
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      if (op === undefined) {
        missing.push(`${route.method} ${route.path}`);
        continue;
      }
      assert.equal(op.summary, route.summary);
      assert.equal(op["x-tidings-role"], route.role, `${route.method} ${route.path}`);
      if (route.body !== undefined) assert.deepEqual(op.requestBody.content["application/json"].schema, jsonSchema(route.body), `${route.method} ${route.path}`);
      else assert.equal(op.requestBody, undefined);
    }
    assert.deepEqual(missing, []);
    const operations = Object.values(doc.paths as Json).reduce((n, item) => n + Object.keys(item as Json).length, 0);
    assert.equal(operations, server.router.routes.length);
    // The routes a reader of the API looks for first, with their bodies.
    assert.deepEqual(doc.paths["/{db}/publish"].post.requestBody.content["application/json"].schema.anyOf[0].required, ["channel", "message"]);
    assert.deepEqual(doc.paths["/{db}/commands"].post.requestBody.content["application/json"].schema.required, ["address", "method"]);
  });

  it("is a well-formed OpenAPI 3.1 document", () => {
    assert.deepEqual(openApiProblems(doc), []);
  });
});

describe("the roles the route table declares", () => {
  let server: TidingsServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("hold: only public routes answer without credentials; publisher, admin and metrics routes refuse a subscriber", async () => {
    const subscriber = await token("viewer", { channels: ["*"] });
    const wrong: string[] = [];
    for (const route of server.router.routes) {
      const path = route.path.replace(":db", "test").replace(":id", "00000000-0000-4000-8000-000000000000");
      const call = async (tok?: string) => {
        const res = await request(`${server.url}${path}`, { method: route.method, ...(tok ? { token: tok } : {}), ...(route.method === "POST" ? { body: {} } : {}) });
        return { status: res.status, code: typeof res.body === "object" && res.body !== null ? res.body.error?.code : undefined };
      };
      const anonymous = await call();
      const name = `${route.method} ${route.path} (${route.role})`;
      if (route.role === "public" ? anonymous.status === 401 : anonymous.code !== "TIDINGS_ERR_AUTH_REQUIRED") wrong.push(`${name} without credentials: ${anonymous.status} ${anonymous.code}`);
      if (route.role === "publisher" || route.role === "admin" || route.role === "metrics") {
        const answer = await call(subscriber);
        if (answer.status !== 403) wrong.push(`${name} for a subscriber: ${answer.status} ${answer.code}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});

describe("declared request bodies", () => {
  let server: TidingsServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("a wrong field answers 400 naming it, with the code its schema declares; the server keeps serving", async () => {
    const bot = await token("bot", { addresses: ["bot:*"] });
    const publisher = await token("app", { role: "publisher" });
    const base = `${server.url}/test/commands`;
    const cases: Array<[string, string, unknown, string, string]> = [
      ["claim", bot, { address: "bot:1", limit: 0 }, "TIDINGS_ERR_REQUEST_INVALID", "limit must be a number from 1 to 100, got 0."],
      ["claim", bot, { address: "bot:1", wait: "5" }, "TIDINGS_ERR_REQUEST_INVALID", 'wait must be a number of at least 0, got "5".'],
      ["renew", bot, { claimer: "has space" }, "TIDINGS_ERR_REQUEST_INVALID", "claimer must be 1 to 100 of A-Z a-z 0-9 _ . : -."],
      ["release", bot, { claimer: "w1" }, "TIDINGS_ERR_REQUEST_INVALID", 'The body has no "address" field.'],
      ["", publisher, { address: "bot:1", method: "x", idempotency_key: 7 }, "TIDINGS_ERR_COMMAND_INVALID", "idempotency_key must be a string of 1 to 200 characters."],
      ["", publisher, { address: "bot 1", method: "1x" }, "TIDINGS_ERR_ADDRESS_INVALID", "address must be 1 to 200 of A-Z a-z 0-9 _ . : - (e.g. software_dev.buildbot:5); method must be an identifier of 1 to 100 characters (A-Z a-z 0-9 _ $ . : -, not starting with a digit)."],
    ];
    for (const [path, tok, body, code, message] of cases) {
      const res = await request(path === "" ? base : `${base}/${path}`, { token: tok, body });
      assert.deepEqual([res.status, res.body], [400, { error: { code, message } }], JSON.stringify(body));
    }
    const ok = await request(`${base}/claim`, { token: bot, body: { address: "bot:1" } });
    assert.equal(ok.status, 200);
  });
});
