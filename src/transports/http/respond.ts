import type { ServerResponse } from "node:http";
import { toTidingsError, type TidingsError } from "../../errors.js";

/** Sends a JSON text already serialised (message JSON is never parsed and re-encoded). */
export function sendJsonText(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** `{"error": {"code": "TIDINGS_ERR_…", "message": "…"}}` with the code's status. */
export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): TidingsError {
  const e = toTidingsError(error);
  const extra: Record<string, string> = { ...headers };
  if (e.status === 401) extra["www-authenticate"] = 'Bearer realm="tidings"';
  sendJson(res, e.status, e.toJSON(), extra);
  return e;
}
