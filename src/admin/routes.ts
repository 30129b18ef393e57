import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { DbLog } from "../core/db-log.js";
import type { Identity } from "../core/identity.js";
import { RateMeter } from "../core/rates.js";
import { TidingsError } from "../errors.js";
import type { ServerContext } from "../transports/http/context.js";
import { route, type RouteContext, type RouteSpec } from "../transports/http/router.js";
import { sendJson } from "../transports/http/respond.js";
import { adminCaller } from "../transports/http/admin-caller.js";
import { collectStats } from "./stats.js";

const PAGE_URL = new URL("../../web/admin.html", import.meta.url);

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
export function adminRoutes(server: ServerContext): RouteSpec[] {
  const startedAt = Date.now();
  const rates = new RateMeter(300);
  const detach = rates.attach(server.bus);
  server.onDrain(detach);
  const { html, csp } = loadPage();

  const page = route({ method: "GET", path: "/admin", role: "public", summary: "The admin page (its data needs an admin token)", produces: "text/html", handler: ({ res }) => {
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(html),
      "cache-control": "no-store",
      "content-security-policy": csp,
      ...HARDENING,
    });
    res.end(html);
  } });
  const stats = route({
    method: "GET",
    path: "/admin/api/stats",
    role: "admin",
    summary: "Live connections, channels, message rates and commands",
    query: { db: "only this database" },
    handler: async (ctx) => {
      const logs = await servedLogs(server, ctx);
      sendJson(ctx.res, 200, await collectStats(server.bus, rates, logs, startedAt), HARDENING);
    },
  });
  return [page, stats];
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
