import type { IncomingHttpHeaders } from "node:http";
import { TidingsError } from "../errors.js";

/**
 * A browser attaches cookies to requests from any site, and a form or a WebSocket needs no
 * CORS permission to be sent: a request authenticated by cookie is accepted only from this
 * server's own origin or a configured one. The page's origin is the `Origin` header, else the
 * `Referer`'s; a request with neither does not come from a page (browsers send `Origin` with
 * every cross-site POST and WebSocket), so it is not refused here.
 */
export function assertCookieOrigin(headers: IncomingHttpHeaders, allowedOrigins: readonly string[]): void {
  const origin = headers.origin ?? refererOrigin(headers.referer);
  if (origin === undefined) return;
  if (allowedOrigins.includes(origin)) return;
  try {
    if (new URL(origin).host === headers.host) return;
  } catch {
    // "null" (a sandboxed page) or garbage: refused below
  }
  throw new TidingsError("TIDINGS_ERR_ORIGIN_FORBIDDEN", `Cookie credentials are not accepted from origin ${JSON.stringify(origin.slice(0, 100))}.`);
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (referer === undefined || referer === "") return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return "null";
  }
}
