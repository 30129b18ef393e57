import WebSocket from "ws";
import { createClient, type CreateClientOptions, type TidingsClient, type TransportName } from "../../src/client/index.js";
import type { WebSocketConstructor } from "../../src/client/websocket-like.js";

export const TRANSPORTS: readonly TransportName[] = ["websocket", "sse", "longpoll"];

/** A client for tests: `ws` as WebSocket (Node 20), quick reconnects, events recorded. */
export function testClient(options: Partial<CreateClientOptions> & Pick<CreateClientOptions, "url">): TidingsClient & {
  readonly log: Array<{ event: string; payload: unknown }>;
} {
  const client = createClient({
    db: "test",
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    backoff: { baseMs: 50, maxMs: 400 },
    ...options,
  } as CreateClientOptions);
  const log: Array<{ event: string; payload: unknown }> = [];
  for (const event of ["connected", "disconnected", "reconnecting", "gap", "error"] as const) {
    client.on(event, (payload) => log.push({ event, payload }));
  }
  return Object.assign(client, { log });
}

/** Resolves when `check()` holds; rejects after `ms` saying what was awaited. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
