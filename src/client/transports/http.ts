import { RemoteError } from "../types.js";
import { httpBase, type TransportContext } from "./transport.js";

/** A JSON request with the current token in the Authorization header (never in the URL). */
export async function requestJson(
  ctx: TransportContext,
  path: string,
  body: unknown,
  signal?: AbortSignal,
  token?: string,
): Promise<unknown> {
  const t = token ?? (await ctx.tokens.current());
  const res = await ctx.fetch(`${httpBase(ctx)}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
    body: JSON.stringify(body),
    ...(signal !== undefined ? { signal } : {}),
  });
  const { json } = await readBody(res);
  if (!res.ok) throw remoteError(res.status, json);
  return json;
}

/** An answer's text and its JSON (null when empty or not JSON: a proxy's error page). */
export async function readBody(res: Response): Promise<{ text: string; json: unknown }> {
  const text = await res.text();
  try {
    return { text, json: text.length > 0 ? (JSON.parse(text) as unknown) : null };
  } catch {
    return { text, json: null };
  }
}

export function remoteError(status: number, json: unknown): RemoteError {
  const err = (json as { error?: { message?: unknown } } | null)?.error;
  const message = typeof err?.message === "string" ? err.message : `HTTP ${status}`;
  return RemoteError.from(message, { status, ...(typeof err === "object" && err !== null ? err : {}) });
}

/** Is the server there at all? (`GET /healthz`; no credentials needed.) */
export async function probe(ctx: TransportContext, signal?: AbortSignal): Promise<void> {
  const res = await ctx.fetch(`${ctx.url.replace(/\/+$/, "")}/healthz`, signal !== undefined ? { signal } : {});
  await res.text().catch(() => "");
  if (!res.ok) throw new Error(`The server answered /healthz with HTTP ${res.status}.`);
}

/**
 * Opening an HTTP transport (SSE, long-polling): the server answers /healthz within the
 * liveness time, and a token is at hand before the first request.
 */
export async function openHttp(ctx: TransportContext, stop: AbortSignal): Promise<void> {
  const d = deadline(ctx.livenessMs, stop);
  try {
    await probe(ctx, d.signal);
  } finally {
    d.clear();
  }
  await ctx.tokens.current();
}

/** An AbortSignal aborted after `ms` or when `parent` aborts. */
export function deadline(ms: number, parent?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(new Error(`No answer within ${ms} ms.`)), ms);
  const onParent = (): void => c.abort(parent?.reason);
  if (parent?.aborted) c.abort(parent.reason);
  parent?.addEventListener("abort", onParent, { once: true });
  return {
    signal: c.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}
