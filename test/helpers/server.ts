import { createServer, type ServerInput, type TidingsServer } from "../../src/server.js";
import { signToken, type TokenClaims } from "../../src/auth/tokens.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import type { Role } from "../../src/core/identity.js";

export const TEST_SECRET = "test-secret-test-secret-test-secret-0123456789";

/** A server on an ephemeral port, memory store unless one is given, silent logs. */
export async function startServer(input: ServerInput = {}): Promise<TidingsServer> {
  const server = await createServer({
    secret: TEST_SECRET,
    logLevel: "silent",
    databases: ["test"],
    ...(input.store === undefined && input.storeInstance === undefined ? { storeInstance: new MemoryStore() } : {}),
    ...input,
  });
  await server.listen(0, "127.0.0.1");
  return server;
}

export function token(
  user: string,
  opts: { db?: string; role?: Role; channels?: string[]; addresses?: string[]; ttlSeconds?: number; secret?: string } = {},
): Promise<string> {
  const claims: TokenClaims = {
    db: opts.db ?? "test",
    user,
    role: opts.role ?? "subscriber",
    ...(opts.channels ? { channels: opts.channels } : {}),
    ...(opts.addresses ? { addresses: opts.addresses } : {}),
    ...(opts.ttlSeconds !== undefined ? { ttlSeconds: opts.ttlSeconds } : {}),
  };
  return signToken(opts.secret ?? TEST_SECRET, claims);
}

export interface JsonResponse {
  status: number;
  body: any;
  headers: Headers;
}

/** A JSON request with fetch; `body` is sent as is when it is a string. */
export async function request(
  url: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { "content-type": "application/json", ...(init.headers ?? {}) };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers,
    ...(init.body !== undefined ? { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}
