import type { IncomingMessage, ServerResponse } from "node:http";

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
}

/** A request's context; the URL object is built only for the routes that read the query string. */
export class RequestContext implements RouteContext {
  private parsedUrl: URL | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Readonly<Record<string, string>>,
  ) {}

  get url(): URL {
    return (this.parsedUrl ??= new URL(this.req.url ?? "/", "http://localhost"));
  }
}

export type RouteHandler = (ctx: RouteContext) => Promise<void> | void;

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
}

/** A small router: `/:db/commands/:id` style patterns, exact method match. */
export class Router {
  private readonly routes: Route[] = [];
  /** Recent answers by method then path: clients re-poll the same few URLs. */
  private readonly recent = new Map<string, Map<string, ReturnType<Router["match"]>>>();

  add(method: string, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method, segments: pattern.split("/").filter(Boolean), handler });
    return this;
  }

  /** The handler and params for a request, `"method"` when only the method is wrong, or null. */
  match(method: string, pathname: string): { handler: RouteHandler; params: Readonly<Record<string, string>> } | "method" | null {
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

  private lookup(method: string, pathname: string): { handler: RouteHandler; params: Record<string, string> } | "method" | null {
    let parts: string[];
    try {
      parts = pathname.split("/").filter(Boolean).map((p) => (p.includes("%") ? decodeURIComponent(p) : p));
    } catch {
      return null; // malformed percent-encoding matches no route
    }
    let wrongMethod = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i]!;
        const part = parts[i]!;
        if (seg.startsWith(":")) params[seg.slice(1)] = part;
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (route.method !== method) {
        wrongMethod = true;
        continue;
      }
      return { handler: route.handler, params };
    }
    return wrongMethod ? "method" : null;
  }
}
