import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { TidingsError } from "../../errors.js";
import type { ServerContext } from "./context.js";
import type { RouteContext } from "./router.js";
import { adminCaller } from "./admin-caller.js";

/**
 * `GET /metrics` (Prometheus text). Metrics name databases, users' connection counts and
 * error rates, and building them costs the server work: by default only the holder of
 * `metricsToken` (Prometheus' `authorization` / `bearer_token` setting) or an admin token
 * may read them; `metricsPublic` opens them to anyone who reaches the port.
 */
export async function handleMetrics(server: ServerContext, { req, res }: RouteContext): Promise<void> {
  if (!server.options.metricsPublic) await assertMetricsReader(server, req);
  const { registry } = server.bus.metrics;
  const text = await registry.metrics();
  res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
  res.end(text);
}

async function assertMetricsReader(server: ServerContext, req: IncomingMessage): Promise<void> {
  const expected = server.options.metricsToken;
  const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  if (expected !== "" && m !== null && sameSecret(m[1]!, expected)) return;
  const who = await adminCaller(server, req);
  if (who.role !== "admin") throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "/metrics needs the metrics token or an admin token.");
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
