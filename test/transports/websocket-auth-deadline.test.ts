/**
 * A WebSocket opened without credentials must authenticate within ws.authTimeoutMs or be
 * closed with 4001 (issue 9, item 7: a thousand idle anonymous sockets exhausted the
 * server's file descriptors). Sockets that authenticate, at the upgrade or by `auth`, stay.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const DEADLINE_MS = 300;

function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("WebSocket: authentication deadline", () => {
  test("an anonymous socket that only pings is closed with 4001 after ws.authTimeoutMs; authenticated ones stay open", async () => {
    const server: TidingsServer = await startServer({ ws: { authTimeoutMs: DEADLINE_MS } });
    try {
      const anonymous = await FrameClient.open(wsUrl(server));
      const byQuery = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      const byFrame = await FrameClient.open(wsUrl(server));
      const authed = await byFrame.request({ id: 1, type: "auth", data: { token: await token("8") } });
      assert.equal(authed.error, undefined);
      const opened = Date.now();
      assert.deepEqual(await anonymous.request({ id: 1, type: "ping" }), { id: 1, type: "pong" });
      const closed = await withinMs(anonymous.closed, DEADLINE_MS + 2_000, "the anonymous socket's close");
      assert.deepEqual(closed, { code: 4001, reason: "authentication required" });
      assert.ok(Date.now() - opened >= DEADLINE_MS - 50, "not closed before the deadline");
      const refused = (await server.bus.metrics.refused.get()).values.find((v) => v.labels.reason === "auth_timeout")?.value;
      assert.equal(refused, 1);
      // Well past the deadline, the authenticated sockets still answer.
      assert.deepEqual(await byQuery.request({ id: 2, type: "ping" }), { id: 2, type: "pong" });
      assert.deepEqual(await byFrame.request({ id: 2, type: "ping" }), { id: 2, type: "pong" });
      assert.equal(server.websocket.connectionCount, 2);
      await byQuery.close();
      await byFrame.close();
    } finally {
      await server.close();
    }
  });
});
