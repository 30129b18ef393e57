import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * CORS for the configured origins only, with credentials (Tryton's web client sends its
 * Session header cross-origin when the bus runs on another host).
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || !origins.includes(origin)) return false;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("access-control-allow-credentials", "true");
  res.setHeader("vary", "Origin");
  return true;
}

/** Answers a preflight; true when it was one. */
export function handlePreflight(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): boolean {
  if (req.method !== "OPTIONS") return false;
  const allowed = applyCors(req, res, origins);
  if (allowed) {
    res.setHeader("access-control-allow-methods", "GET, POST, DELETE, OPTIONS");
    res.setHeader(
      "access-control-allow-headers",
      req.headers["access-control-request-headers"] ?? "authorization, content-type, last-event-id",
    );
    res.setHeader("access-control-max-age", "600");
  }
  res.writeHead(allowed ? 204 : 403, { "content-length": 0 });
  res.end();
  return true;
}
