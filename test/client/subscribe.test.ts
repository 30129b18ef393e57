/**
 * createClient() against a real server, on every transport: messages in log order, each
 * once, across channels and overlapping subscriptions; `from` resumes; a trimmed cursor is a
 * gap; a forbidden channel rejects the subscription and leaves the others running; tokens are
 * refreshed before they expire without a disconnect; publish and application calls.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Duplex } from "node:stream";
import type { TidingsServer } from "../../src/server.js";
import type { BusMessage } from "../../src/client/index.js";
import { RemoteError } from "../../src/client/index.js";
import { startServer, token } from "../helpers/server.js";
import { TRANSPORTS, testClient, until } from "./helpers.js";

let server: TidingsServer;
before(async () => {
  server = await startServer({
    accessRules: [{ channels: "room-*" }],
    databases: { test: { retention: { maxCount: 3 } } },
    sseKeepAliveMs: 200,
  });
  server.bus.handle("echo", (_ctx, request) => ({ echoed: request.data }));
});
after(() => server.close());

const publishAll = async (channel: string, from: number, to: number): Promise<string[]> => {
  const ids: string[] = [];
  for (let i = from; i < to; i++) ids.push(await server.bus.publish("test", channel, { type: "n", n: i }));
  return ids;
};

for (const transport of TRANSPORTS) {
  describe(`createClient over ${transport}`, () => {
    it("delivers each message once, in log order, with its channel, to every subscription", async () => {
      const client = testClient({ url: server.url, token: await token("7"), transports: [transport] });
      try {
        const a: Array<[string, unknown]> = [];
        const b: Array<[string, unknown]> = [];
        const subA = client.subscribe(["room-a1", "room-a2"], (m, channel) => a.push([channel, m.n]));
        const subB = client.subscribe("room-a2", (m, channel) => b.push([channel, m.n]));
        await Promise.all([subA.ready, subB.ready]);
        assert.equal(client.transport, transport);
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push(await server.bus.publish("test", i % 2 ? "room-a2" : "room-a1", { type: "n", n: i }));
        await until(() => a.length >= 6 && b.length >= 3, "six messages");
        assert.deepEqual(a, [0, 1, 2, 3, 4, 5].map((n) => [n % 2 ? "room-a2" : "room-a1", n]));
        assert.deepEqual(b, [1, 3, 5].map((n) => ["room-a2", n]));
        assert.equal(subA.cursor, ids[5]);

        // Unsubscribed: nothing more for it; the other subscription goes on from where it was.
        subB.unsubscribe();
        await publishAll("room-a2", 6, 8);
        await until(() => a.length >= 8, "two more");
        assert.deepEqual(a.slice(6), [["room-a2", 6], ["room-a2", 7]]);
        assert.equal(b.length, 3);
      } finally {
        await client.close();
      }
    });

    it("resumes after `from`, and a cursor older than retention is a gap", async () => {
      const ids = await publishAll("room-b", 0, 3);
      const client = testClient({ url: server.url, token: await token("7"), transports: [transport] });
      try {
        const got: BusMessage[] = [];
        await client.subscribe("room-b", (m) => got.push(m), { from: ids[0] }).ready;
        await until(() => got.length >= 2, "the two after the cursor");
        assert.deepEqual(got.map((m) => m.message_id), ids.slice(1));

        // Retention keeps 3 messages: the cursor ids[0] falls out of the log.
        const later = await publishAll("room-b", 3, 6);
        await server.bus.runRetention();
        const gaps: Array<readonly string[]> = [];
        const resumed: BusMessage[] = [];
        await client.subscribe("room-b", (m) => resumed.push(m), { from: ids[0], onGap: (c) => gaps.push(c) }).ready;
        await until(() => gaps.length >= 1 && resumed.length >= 3, "the gap and the retained messages");
        assert.deepEqual(gaps[0], ["room-b"]);
        assert.deepEqual(resumed.map((m) => m.message_id), later, "from the oldest retained message on");
        assert.ok(client.log.some((e) => e.event === "gap"));
      } finally {
        await client.close();
      }
    });

    it("rejects a forbidden subscription and keeps the others", async () => {
      const client = testClient({ url: server.url, token: await token("7"), transports: [transport] });
      try {
        const got: unknown[] = [];
        const ok = client.subscribe("room-c", (m) => got.push(m.n));
        await ok.ready;
        const bad = client.subscribe("user:8", () => assert.fail("never"));
        await assert.rejects(bad.ready, (e: unknown) => e instanceof RemoteError && e.code === "TIDINGS_ERR_CHANNEL_FORBIDDEN");
        assert.equal(bad.active, false);
        await publishAll("room-c", 0, 2);
        await until(() => got.length >= 2, "room-c after the refusal");
        assert.deepEqual(got, [0, 1]);
      } finally {
        await client.close();
      }
    });

    it("asks getToken again before the token expires and keeps receiving without a disconnect", async () => {
      let calls = 0;
      const client = testClient({
        url: server.url,
        transports: [transport],
        getToken: () => {
          calls++;
          return token("7", { ttlSeconds: 3 });
        },
      });
      try {
        const got: unknown[] = [];
        await client.subscribe("room-d", (m) => got.push(m.n)).ready;
        // Messages keep coming for longer than two token lifetimes.
        const end = Date.now() + 7_000;
        let n = 0;
        while (Date.now() < end) {
          await server.bus.publish("test", "room-d", { type: "n", n: n++ });
          await until(() => got.length === n, `message ${n - 1}`);
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.deepEqual(got, [...Array(n).keys()]);
        assert.ok(calls >= 3, `getToken called ${calls} times`);
        assert.deepEqual(client.log.filter((e) => e.event === "disconnected"), []);
      } finally {
        await client.close();
      }
    });

    it("publishes where the role allows, and refuses where it does not", async () => {
      const publisher = testClient({ url: server.url, token: await token("app", { role: "publisher" }), transports: [transport] });
      const reader = testClient({ url: server.url, token: await token("7"), transports: [transport] });
      try {
        const got: BusMessage[] = [];
        await reader.subscribe("room-e", (m) => got.push(m)).ready;
        const id = await publisher.publish("room-e", { type: "hello" });
        await until(() => got.length >= 1, "the published message");
        assert.equal(got[0]!.message_id, id);
        await assert.rejects(reader.publish("room-e", { type: "nope" }), (e: unknown) => e instanceof RemoteError && e.code === "TIDINGS_ERR_ROLE_FORBIDDEN");
      } finally {
        await Promise.all([publisher.close(), reader.close()]);
      }
    });
  });
}

describe("createClient calls and fallback", () => {
  it("calls application handlers over WebSocket, with a timeout", async () => {
    const client = testClient({ url: server.url, token: await token("7") });
    try {
      assert.deepEqual(await client.call("echo", { a: 1 }, { timeoutMs: 5000 }), { echoed: { a: 1 } });
      await assert.rejects(client.call("no-such", null), (e: unknown) => e instanceof RemoteError && e.code === "TIDINGS_ERR_HANDLER_UNKNOWN");
    } finally {
      await client.close();
    }
  });

  it("falls back to SSE, then long-polling, when WebSocket is refused", async () => {
    const t = await token("7");
    // A path where no WebSocket is served: the upgrade is refused.
    const sse = testClient({ url: server.url, token: t, wsPath: "/no-ws-here" });
    const poll = testClient({ url: server.url, token: t, wsPath: "/no-ws-here", transports: ["websocket", "longpoll"] });
    try {
      const got: unknown[] = [];
      await sse.subscribe("room-f", (m) => got.push(m.n)).ready;
      await poll.subscribe("room-f", (m) => got.push(m.n)).ready;
      assert.equal(sse.transport, "sse");
      assert.equal(poll.transport, "longpoll");
      await publishAll("room-f", 0, 1);
      await until(() => got.length >= 2, "both clients");
    } finally {
      await Promise.all([sse.close(), poll.close()]);
    }
  });

  it("notices a half-open connection within livenessMs", async () => {
    const sockets: Duplex[] = [];
    const onUpgrade = (_req: unknown, socket: Duplex): void => void sockets.push(socket);
    server.http.on("upgrade", onUpgrade);
    const client = testClient({ url: server.url, token: await token("7"), livenessMs: 600, heartbeatMs: 100 });
    try {
      await client.subscribe("room-g", () => {}).ready;
      // The server stops reading this socket: pings go unanswered, as on a dead link.
      assert.equal(sockets.length, 1);
      sockets[0]!.pause();
      const started = Date.now();
      await until(() => client.log.some((e) => e.event === "disconnected"), "the disconnect", 5000);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2000, `noticed after ${elapsed} ms`);
      const d = client.log.find((e) => e.event === "disconnected")!.payload as { reason: string };
      assert.match(d.reason, /half-open/);
      await until(() => client.connected, "the reconnect");
    } finally {
      server.http.off("upgrade", onUpgrade);
      await client.close();
    }
  });
});
