import { readFileSync } from "node:fs";
import type { TSchema } from "@sinclair/typebox";
import { OWN_KEYWORDS } from "../../protocol/schema/check.js";
import type { Role, RouteSpec } from "./router.js";

/**
 * The OpenAPI 3.1 document of the route table, served at `GET /openapi.json`: every route
 * with its parameters, body schema (the very schema the body is checked against), who may
 * call it, and the error answer every route shares.
 */

export const VERSION = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;


/** A schema as plain JSON Schema: our keywords and the Optional marker (a symbol) left out. */
export function jsonSchema(schema: TSchema): Record<string, unknown> {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (typeof value !== "object" || value === null) return value;
    return Object.fromEntries(Object.entries(value).filter(([k]) => !OWN_KEYWORDS.has(k)).map(([k, v]) => [k, strip(v)]));
  };
  return strip(schema) as Record<string, unknown>;
}

const ROLE_TEXT: Record<Role, string> = {
  public: "Anyone.",
  subscriber: "Any authenticated user of the database (token, session cookie or Tryton session); channels as access rules allow.",
  publisher: "The publisher or admin role.",
  admin: "The admin role.",
  address: "A client whose token lists the command address (`addresses`), or an admin.",
  metrics: "The metrics token or an admin token (anyone with `metricsPublic`).",
};

/** `/:db/commands/:id` → `/{db}/commands/{id}` and its parameter names. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path.replace(/:([A-Za-z_]+)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: converted, params };
}

const PARAM_TEXT: Record<string, string> = { db: "the database", id: "the command id" };

function operationId(route: RouteSpec): string {
  const words = route.path
    .split("/")
    .filter((s) => s !== "" && !s.startsWith(":"))
    .map((s) => s.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase()));
  const name = [route.method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join("");
  return route.path.includes(":id") ? `${name}ById` : name;
}

export function openApiDocument(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const { path, params } = openApiPath(route.path);
    const parameters = [
      ...params.map((name) => ({ name, in: "path", required: true, description: PARAM_TEXT[name] ?? name, schema: { type: "string" } })),
      ...Object.entries(route.query ?? {}).map(([name, description]) => ({ name, in: "query", required: false, description, schema: { type: "string" } })),
    ];
    const success = route.produces === undefined ? { "application/json": {} } : { [route.produces]: {} };
    paths[path] ??= {};
    paths[path]![route.method.toLowerCase()] = {
      operationId: operationId(route),
      summary: route.summary,
      description: `Who may call it: ${ROLE_TEXT[route.role]}`,
      "x-tidings-role": route.role,
      ...(route.role === "public" ? { security: [] } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(route.body !== undefined ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(route.body) } } } } : {}),
      responses: {
        "200": { description: "Done.", content: success },
        default: { description: "An error: its code is stable, see docs/errors.md.", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "tidings",
      version: VERSION,
      description: "A real-time message bus for business applications. The wires are described in docs/protocol/.",
    },
    security: [{ bearer: [] }, { cookie: [] }, { trytonSession: [] }, { trytonCookie: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A token of `tidings token` or of the application." },
        cookie: { type: "apiKey", in: "cookie", name: "tidings_session", description: "A token in the session cookie (its name is the `sessionCookie` option)." },
        trytonSession: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "Tryton's `Session base64(login:user_id:key)`, checked against Tryton's ir_session, when Tryton sessions are on (`tryton.url`, `trytonSessions.url`).",
        },
        trytonCookie: {
          type: "apiKey",
          in: "cookie",
          name: "tryton_session",
          description: "trytond 8's session cookie `login:user_id:key` (sao 8), when Tryton sessions are on.",
        },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: {
                code: { type: "string", description: "TIDINGS_ERR_…, listed in docs/errors.md" },
                message: { type: "string", description: "a sentence for people" },
              },
            },
          },
        },
      },
    },
  };
}
