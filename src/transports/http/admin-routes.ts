import { bearerToken } from "../../auth/credentials.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { decodeJwt } from "jose";
import { readCookie } from "../../auth/authenticate.js";
import type { DbLog } from "../../core/db-log.js";
import type { Identity } from "../../core/identity.js";
import { RateMeter } from "../../core/rates.js";
import { TidingsError } from "../../errors.js";
import type { ServerContext } from "./context.js";
import type { RouteContext, Router } from "./router.js";
import { sendJson } from "./respond.js";
import { collectStats } from "./admin-stats.js";

const PAGE_URL = new URL("../../../web/admin.html", import.meta.url);

/** Headers of every admin answer: nothing sniffed, framed, or leaked through the Referer. */
const HARDENING = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
} as const;

interface Page {
  readonly html: string;
  readonly csp: string;
}

let page: Page | undefined;

/**
 * The page, read once per process, with a CSP that allows exactly its inline script and
 * style (by hash: the page is static, so no per-request nonce is needed).
 */
function loadPage(): Page {
  if (page !== undefined) return page;
  const html = readFileSync(PAGE_URL, "utf8");
  const hashes = (tag: "script" | "style"): string[] =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map(
      (m) => `'sha256-${createHash("sha256").update(m[1]!, "utf8").digest("base64")}'`,
    );
  const csp = [
    "default-src 'self'",
    `script-src ${hashes("script").join(" ")}`,
    `style-src ${hashes("style").join(" ")}`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  page = { html, csp };
  return page;
}

/**
 * The admin page (DESIGN §8): `GET /admin` serves web/admin.html, which polls
 * `GET /admin/api/stats[?db=<name>]` for live connections, channels, message rates and
 * commands. Admin role only; an admin token of one database sees that database, one for
 * "*" sees every database this process serves.
 */
export function registerAdminRoutes(server: ServerContext, r: Router): void {
  const startedAt = Date.now();
  const rates = new RateMeter(300);
  const detach = rates.attach(server.bus);
  server.onDrain(detach);
  const { html, csp } = loadPage();

  r.add("GET", "/admin", ({ res }) => {
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(html),
      "cache-control": "no-store",
      "content-security-policy": csp,
      ...HARDENING,
    });
    res.end(html);
  });

  r.add("GET", "/admin/api/stats", async (ctx) => {
    const logs = await servedLogs(server, ctx);
    sendJson(ctx.res, 200, await collectStats(server.bus, rates, logs, startedAt), HARDENING);
  });
}

/** The logs the caller may see: `?db=` alone, else the token's database, or every loaded one for "*". */
async function servedLogs(server: ServerContext, { req, url }: RouteContext): Promise<DbLog[]> {
  const { bus } = server;
  const requested = url.searchParams.get("db");
  if (requested !== null && requested !== "") {
    // The usual per-database check: an admin of another database gets 403 wrong-db.
    assertAdmin(await server.authenticate(requested, req));
    return [bus.log(requested)];
  }
  const who = assertAdmin(await adminCaller(server, req));
  if (who.db === "*") return [...bus.loadedLogs().values()];
  try {
    return [bus.log(who.db)];
  } catch (e) {
    // A token for a database no longer served: nothing to show, but not an error.
    if (e instanceof TidingsError && (e.code === "TIDINGS_ERR_DB_UNKNOWN" || e.code === "TIDINGS_ERR_DB_BUS_DISABLED")) return [];
    throw e;
  }
}

function assertAdmin(who: Identity): Identity {
  if (who.role !== "admin") throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "The admin page needs the admin role.");
  return who;
}

/**
 * The caller of a request that names no database: a Bearer token or the session cookie.
 * The token's own `db` claim picks the database it is verified for; the verification then
 * checks the signature and that the verified claim is that same database.
 */
export async function adminCaller(server: ServerContext, req: IncomingMessage): Promise<Identity> {
  const authorization = req.headers.authorization;
  let token: string | null = null;
  let via: Identity["via"] = "jwt";
  if (authorization !== undefined && authorization.length > 0) {
    token = bearerToken(authorization);
    if (token === null) {
      throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The admin API accepts Bearer tokens or the session cookie.");
    }
  } else {
    token = readCookie(req.headers.cookie, server.options.sessionCookie);
    via = "cookie";
    if (token) server.authenticator.checkCookieOrigin(req.headers);
  }
  if (!token) throw new TidingsError("TIDINGS_ERR_AUTH_REQUIRED");
  let db: unknown;
  try {
    db = decodeJwt(token).db;
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Invalid token.", { cause });
  }
  if (typeof db !== "string") throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The token lacks a subject or a database.");
  return server.authenticator.fromToken(db, token, via);
}
