import { describe, mock, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { FrameClient, ids, publishN, wsUrl, type Frame } from "./websocket-helpers.js";

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));
const isPush = (f: Frame) => f.type === "subscription-update";

async function withServer(input: Parameters<typeof startServer>[0], fn: (server: TidingsServer) => Promise<void>): Promise<void> {
  const server = await startServer({ accessRules: [{ channels: "room-*" }], ...input });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function subscribed(server: TidingsServer, user: string, channels: string[]): Promise<FrameClient> {
  const c = await FrameClient.open(wsUrl(server, { token: await token(user) }));
  const reply = await c.request({ id: "s", type: "subscribe", data: { channels } });
  assert.equal(reply.error, undefined);
  return c;
}

describe("WebSocket: limits and bad input", () => {
  test("a frame over ws.maxPayload closes that socket with 1009; others are unaffected", () =>
    withServer({ ws: { maxPayload: 1024 } }, async (server) => {
      const bad = await subscribed(server, "7", ["room-1"]);
      const good = await subscribed(server, "8", ["room-1"]);
      bad.send(JSON.stringify({ id: 1, type: "ping", data: "x".repeat(2000) }));
      assert.equal((await bad.closed).code, 1009);
      const id = await server.bus.publish("test", "room-1", { type: "t" });
      assert.deepEqual(ids(await good.pushes(1)), [id]);
      assert.deepEqual(await good.request({ id: 2, type: "ping", data: "x".repeat(900) }), { id: 2, type: "pong", data: "x".repeat(900) });
      await good.close();
    }));

  test("a flood of frames closes that socket with 4029 after ws.maxFramesPerSecond; others are unaffected", () =>
    withServer({ ws: { maxFramesPerSecond: 50 } }, async (server) => {
      const flood = await subscribed(server, "7", ["room-1"]);
      const good = await subscribed(server, "8", ["room-1"]);
      for (let i = 0; i < 1000; i++) flood.send({ id: i, type: "ping" });
      const closed = await flood.closed;
      assert.deepEqual(closed, { code: 4029, reason: "too many frames" });
      // About one second's worth of pings was answered, in order, then nothing (a slow
      // machine may spread the flood over two windows of a second).
      const pongs = flood.log.filter((f) => f.type === "pong").map((f) => f.id);
      assert.ok(pongs.length >= 49 && pongs.length < 150, `${pongs.length} pongs`);
      assert.deepEqual(pongs, Array.from({ length: pongs.length }, (_, i) => i));
      const id = await server.bus.publish("test", "room-1", { type: "t" });
      assert.deepEqual(ids(await good.pushes(1)), [id]);
      await good.close();
    }));

  test("a client that stops reading is closed with 4008 at ws.maxBufferedBytes and resumes from its cursor, nothing lost", () =>
    withServer({ ws: { maxBufferedBytes: 256 * 1024 } }, async (server) => {
      const slow = await subscribed(server, "7", ["room-1"]);
      const fast = await subscribed(server, "8", ["room-1"]);
      let overflowed = false;
      const overflow = once(server.websocket, "connection:overflow").then(([info]) => {
        overflowed = true;
        return info as { id: string; bufferedBytes: number };
      });
      slow.ws.pause();
      const pad = "x".repeat(8000);
      const published: string[] = [];
      while (!overflowed) {
        published.push(await server.bus.publish("test", "room-1", { type: "t", n: published.length, pad }));
        await yieldTurn();
        assert.ok(published.length < 50_000, "the slow client was never closed");
      }
      const info = await overflow;
      // Never more than the cap plus one eager write of queued frames.
      assert.ok(info.bufferedBytes <= 256 * 1024 + 64 * 1024 + 9000, `buffered ${info.bufferedBytes}`);
      published.push(...(await publishN(server, "room-1", 5, published.length)));
      assert.deepEqual(ids(await fast.pushes(published.length)), published);

      slow.ws.resume();
      assert.deepEqual(await slow.closed, { code: 4008, reason: "send buffer full, resume from your last message_id" });
      const seen = ids(slow.log.filter(isPush));
      assert.deepEqual(seen, published.slice(0, seen.length));
      const again = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      await again.request({ id: 1, type: "subscribe", data: { channels: ["room-1"], last_message: seen.at(-1) ?? null } });
      assert.deepEqual(ids(await again.pushes(published.length - seen.length)), published.slice(seen.length));
      await again.close();
      await fast.close();
    }));

  test("invalid tokens mid-session get error replies; the session and its pushes go on", () =>
    withServer({ accessRules: [{ channels: "room-*" }] }, async (server) => {
      const c = await subscribed(server, "7", ["room-1"]);
      const published: string[] = [];
      const attempts: Array<[unknown, string]> = [
        [{ token: "garbage" }, "TIDINGS_ERR_AUTH_INVALID"],
        [{ token: await token("7", { secret: "another-secret-another-secret-0123456789" }) }, "TIDINGS_ERR_AUTH_INVALID"],
        [{ token: await token("7", { ttlSeconds: -10 }) }, "TIDINGS_ERR_AUTH_EXPIRED"],
        [{ token: await token("8") }, "TIDINGS_ERR_AUTH_INVALID"],
      ];
      for (const [i, [data, code]] of attempts.entries()) {
        published.push(await server.bus.publish("test", "room-1", { type: "t", i }));
        const reply = await c.request({ id: i, type: "auth", data });
        assert.equal(reply.data.code, code, JSON.stringify(reply));
      }
      const other = await c.request({ id: "x", type: "auth", data: { token: await token("8") } });
      assert.equal(other.error, "This connection belongs to another user; open a new connection for this one.");
      assert.deepEqual((await c.request({ id: "j", type: "subscribe", auth_jwt: "bad", data: { channels: ["room-2"] } })).data, {
        code: "TIDINGS_ERR_AUTH_INVALID",
      });
      published.push(await server.bus.publish("test", "room-1", { type: "t", last: true }));
      assert.deepEqual(ids(await c.pushes(published.length)), published);
      assert.deepEqual(await c.request({ id: "p", type: "ping" }), { id: "p", type: "pong" });
      await c.close();
    }));

  test("a refreshed token that no longer grants a channel unsubscribes it and says so", () =>
    withServer({ accessRules: [] }, async (server) => {
      const c = await FrameClient.open(wsUrl(server, { token: await token("7", { channels: ["secret-*"] }) }));
      await c.request({ id: 1, type: "subscribe", data: { channels: ["secret-1", "user:7"] } });
      const reply = await c.request({ id: 2, type: "auth", data: { token: await token("7") } });
      assert.deepEqual(reply.data.unsubscribed, ["secret-1"]);
      await server.bus.publish("test", "secret-1", { type: "t" });
      const mine = await server.bus.publish("test", "user:7", { type: "t" });
      assert.deepEqual(ids(await c.pushes(1)), [mine]);
      await c.close();
    }));

  test("credentials that expire close the connection with 4001", () =>
    withServer({}, async (server) => {
      // Two seconds: `exp` is whole seconds, so a one-second token may be dead before the upgrade.
      const c = await FrameClient.open(wsUrl(server, { token: await token("7", { ttlSeconds: 2 }) }));
      // The once-a-second sweep then finds it expired, without the test waiting for the real clock.
      mock.timers.enable({ apis: ["Date"], now: Date.now() + 3000 });
      try {
        assert.deepEqual(await c.closed, { code: 4001, reason: "authentication expired" });
      } finally {
        mock.timers.reset();
      }
    }));

  test("a peer that does not answer protocol pings is dropped; one that does stays", () =>
    withServer({ ws: { pingIntervalMs: 150 } }, async (server) => {
      const dead = await FrameClient.open(wsUrl(server, { token: await token("7") }), { autoPong: false });
      const alive = await FrameClient.open(wsUrl(server, { token: await token("8") }));
      const closed = once(server.websocket, "connection:close");
      assert.equal((await dead.closed).code, 1006);
      await closed;
      assert.equal(server.websocket.connectionCount, 1);
      assert.deepEqual(await alive.request({ id: 1, type: "ping" }), { id: 1, type: "pong" });
      await alive.close();
    }));

  test("at most ws.maxPendingRequests requests are answered at once; ping is never held back", () =>
    withServer({ ws: { maxPendingRequests: 2 } }, async (server) => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      server.bus.handle("slow", async () => {
        await gate;
        return "done";
      });
      const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      c.send({ id: 1, type: "slow" });
      c.send({ id: 2, type: "slow" });
      assert.deepEqual(await c.request({ id: 3, type: "slow" }), {
        id: 3,
        type: "slow",
        error: "At most 2 requests may be pending; wait for replies.",
        data: { code: "TIDINGS_ERR_LIMIT_RATE" },
      });
      assert.deepEqual(await c.request({ id: 4, type: "ping" }), { id: 4, type: "pong" });
      release();
      assert.deepEqual(await c.waitFor((f) => f.id === 1), { id: 1, type: "slow", data: "done" });
      assert.deepEqual(await c.waitFor((f) => f.id === 2), { id: 2, type: "slow", data: "done" });
      await c.close();
    }));

  test("draining closes every socket with 1001; what was published before is delivered first", async () => {
    const server = await startServer({ accessRules: [{ channels: "room-*" }] });
    const a = await subscribed(server, "7", ["room-1"]);
    const b = await subscribed(server, "8", ["room-1"]);
    const id = await server.bus.publish("test", "room-1", { type: "t" });
    await server.close();
    for (const c of [a, b]) {
      assert.deepEqual(await c.closed, { code: 1001, reason: "server shutting down" });
      assert.deepEqual(ids(c.log.filter(isPush)), [id]);
    }
  });
});
