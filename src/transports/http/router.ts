import type { IncomingMessage, ServerResponse } from "node:http";
import type { Static, TSchema } from "@sinclair/typebox";
import { parseWire } from "../../protocol/validate.js";
import { readJsonBody, type BodyOwner } from "./body.js";

/**
 * Who may call a route: no one in particular (`public`), a subscriber or better, a
 * publisher or admin, an admin, a client serving the command address it names
 * (token `addresses`), or a reader of /metrics (metrics token, admin, or anyone with
 * `metricsPublic`). The handlers check it; the OpenAPI document shows it.
 */
export type Role = "public" | "subscriber" | "publisher" | "admin" | "address" | "metrics";

/** The body type a route's schema declares (`unknown` for routes without a body schema). */
type BodyOf<B> = B extends TSchema ? Static<B> : unknown;

export interface RouteContext<Body = unknown> {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  readonly route: RouteSpec;
  /**
   * Reads the JSON body (up to maxBodyBytes, within the owner's deadline and byte cap) and
   * checks it against the route's body schema: a wrong field answers 400 naming it.
   */
  readBody(owner?: BodyOwner): Promise<Body>;
}

/** One HTTP route: what the route table (./routes.ts) declares and the OpenAPI document shows. */
export interface RouteSpec<B extends TSchema | undefined = TSchema | undefined> {
  readonly method: "GET" | "POST";
  /** `/:db/commands/:id`: a `:name` segment is a parameter. */
  readonly path: string;
  readonly role: Role;
  /** One line for the API description. */
  readonly summary: string;
  readonly body?: B;
  /** Query parameters, by name, with what they mean. */
  readonly query?: Readonly<Record<string, string>>;
  /** What a success answers, when not JSON (`text/html`, `text/event-stream`…). */
  readonly produces?: string;
  readonly handler: (ctx: RouteContext<BodyOf<B>>) => Promise<void> | void;
}

/** Declares a route; its handler's `readBody` is typed by the body schema. */
export function route<B extends TSchema | undefined = undefined>(spec: RouteSpec<B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/**
 * The context of one HTTP request; the URL object is built only for the routes that read
 * the query string.
 */
export class HttpRequestContext implements RouteContext {
  private parsedUrl: URL | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Readonly<Record<string, string>>,
    readonly route: RouteSpec,
    private readonly maxBodyBytes: number,
  ) {}

  get url(): URL {
    return (this.parsedUrl ??= new URL(this.req.url ?? "/", "http://localhost"));
  }

  async readBody(owner?: BodyOwner): Promise<unknown> {
    const body = await readJsonBody(this.req, this.maxBodyBytes, owner);
    return this.route.body === undefined ? body : parseWire(this.route.body, body, "The body");
  }
}

interface Compiled {
  readonly spec: RouteSpec;
  readonly segments: readonly string[];
}

type Match = { route: RouteSpec; params: Readonly<Record<string, string>> } | "method" | null;

/** Matches requests against the route table: `/:db/commands/:id` style patterns, exact method match. */
export class Router {
  private readonly compiled: readonly Compiled[];
  /** Recent answers by method then path: clients re-poll the same few URLs. */
  private readonly recent = new Map<string, Map<string, Match>>();

  constructor(readonly routes: readonly RouteSpec[]) {
    this.compiled = routes.map((spec) => ({ spec, segments: spec.path.split("/").filter(Boolean) }));
  }

  /** The route and params for a request, `"method"` when only the method is wrong, or null. */
  match(method: string, pathname: string): Match {
    let byPath = this.recent.get(method);
    const known = byPath?.get(pathname);
    if (known !== undefined) return known;
    const found = this.lookup(method, pathname);
    // Any method is cached under the same bound: unknown methods and paths cannot grow it.
    if (byPath === undefined) {
      if (this.recent.size >= 16) this.recent.clear();
      byPath = new Map();
      this.recent.set(method, byPath);
    }
    if (byPath.size >= 256) byPath.clear();
    byPath.set(pathname, found);
    return found;
  }

  private lookup(method: string, pathname: string): Match {
    let parts: string[];
    try {
      parts = pathname.split("/").filter(Boolean).map((p) => (p.includes("%") ? decodeURIComponent(p) : p));
    } catch {
      return null; // malformed percent-encoding matches no route
    }
    let wrongMethod = false;
    for (const { spec, segments } of this.compiled) {
      if (segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = segments[i]!;
        const part = parts[i]!;
        if (seg.startsWith(":")) params[seg.slice(1)] = part;
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (spec.method !== method) {
        wrongMethod = true;
        continue;
      }
      return { route: spec, params };
    }
    return wrongMethod ? "method" : null;
  }
}
