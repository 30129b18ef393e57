import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { once } from "node:events";
import { MemoryStore } from "../../src/stores/memory/index.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { pushFrame } from "../../src/transports/websocket/frame.js";
import { startServer, token } from "../helpers/server.js";
import { FrameClient, ids, publishN, wsUrl } from "./websocket-helpers.js";

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

describe("WebSocket: subscribe, pushes, resume", () => {
  let server: TidingsServer;
  let client: FrameClient;

  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }, { channels: "chat:*" }], ws: { maxSubscriptions: 20 } });
    client = await FrameClient.open(wsUrl(server, { token: await token("7") }));
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  /** Proves nothing else is queued: the next frame after a ping is its pong. */
  async function nothingElse(c: FrameClient): Promise<void> {
    const id = `probe-${Math.random()}`;
    c.send({ id, type: "ping" });
    assert.deepEqual(await c.next(), { id, type: "pong" });
  }

  test("a rohrpost-js group subscribes channel T-I; pushes carry the message under data.group", async () => {
    assert.deepEqual(await client.request({ id: 1, type: "subscribe", data: { type: "room", id: 42 } }), {
      id: 1,
      type: "subscribe",
      data: { group: "room-42" },
    });
    const id = await server.bus.publish("test", "room-42", { type: "invoice", number: 42, amount: { __class__: "Decimal", decimal: "1.10" } });
    assert.deepEqual(await client.next(), {
      type: "subscription-update",
      id,
      data: {
        group: "room-42",
        message: { message_id: id, type: "invoice", number: 42, amount: { __class__: "Decimal", decimal: "1.10" } },
      },
    });
    assert.deepEqual(await client.request({ id: 2, type: "unsubscribe", data: { type: "room", id: 42 } }), {
      id: 2,
      type: "unsubscribe",
      data: { group: "room-42" },
    });
    await server.bus.publish("test", "room-42", { type: "after" });
    await nothingElse(client);
  });

  test("pushes of several subscriptions arrive in log order, each once", async () => {
    await client.request({ id: 10, type: "subscribe", data: { channels: ["room-a"] } });
    await client.request({ id: 11, type: "subscribe", data: { channels: ["room-b", "room-a"] } });
    assert.deepEqual(await client.request({ id: 12, type: "subscribe", data: { type: "room", id: "a" } }), {
      id: 12,
      type: "subscribe",
      data: { group: "room-a" },
    });
    const published = await server.bus.publishMany(
      "test",
      ["room-a", "room-b", "room-a", "room-c", "room-b"].map((channel, n) => ({ channel, message: { type: "t", n } })),
    );
    const got = await client.pushes(4);
    assert.deepEqual(ids(got), [published[0], published[1], published[2], published[4]]);
    assert.deepEqual(
      got.map((f) => f.data.group),
      ["room-a", "room-b", "room-a", "room-b"],
    );
    await nothingElse(client);
    await client.request({ id: 13, type: "unsubscribe", data: { channels: ["room-a", "room-b", "room-never"] } });
  });

  test("a channel name may hold commas and colons (Tryton's chat:sale.sale,12)", async () => {
    assert.deepEqual(await client.request({ id: 20, type: "subscribe", data: { channels: ["chat:sale.sale,12"] } }), {
      id: 20,
      type: "subscribe",
      data: { channels: ["chat:sale.sale,12"] },
    });
    const id = await server.bus.publish("test", "chat:sale.sale,12", { type: "chat", text: "hi" });
    assert.deepEqual((await client.next()).data, { group: "chat:sale.sale,12", message: { message_id: id, type: "chat", text: "hi" } });
    await client.request({ id: 21, type: "unsubscribe", data: { channels: ["chat:sale.sale,12"] } });
  });

  test("a forbidden channel is named, and nothing of that request is subscribed", async () => {
    assert.deepEqual(await client.request({ id: 30, type: "subscribe", data: { channels: ["room-x", "user:8"] } }), {
      id: 30,
      type: "subscribe",
      error: 'Not allowed to read channel "user:8".',
      data: { code: "TIDINGS_ERR_CHANNEL_FORBIDDEN", channel: "user:8" },
    });
    await server.bus.publish("test", "room-x", { type: "t" });
    await nothingElse(client);
  });

  test("bad subscription data", async () => {
    assert.deepEqual(await client.request({ id: 40, type: "subscribe", data: { channels: ["room-1"], last_message: 5 } }), {
      id: 40,
      type: "subscribe",
      error: "last_message must be a string or null.",
      data: { code: "TIDINGS_ERR_CURSOR_INVALID" },
    });
    const shape = await client.request({ id: 41, type: "subscribe", data: "room-1" });
    assert.equal(shape.error, 'Expected {"channels": [..], "last_message"?: <message_id|null>} or a group {"type": <string>, "id": <string|number>}.');
    assert.deepEqual(shape.data, { code: "TIDINGS_ERR_REQUEST_INVALID" });
    const empty = await client.request({ id: 42, type: "subscribe", data: { channels: [""] } });
    assert.deepEqual(empty.data, { code: "TIDINGS_ERR_CHANNEL_INVALID", channel: "" });
  });

  test("at most ws.maxSubscriptions channels per connection", async () => {
    const many = Array.from({ length: 21 }, (_, i) => `room-m${i}`);
    assert.deepEqual(await client.request({ id: 50, type: "subscribe", data: { channels: many } }), {
      id: 50,
      type: "subscribe",
      error: "At most 20 channels per connection.",
      data: { code: "TIDINGS_ERR_CHANNEL_TOO_MANY", max: 20 },
    });
    assert.equal((await client.request({ id: 51, type: "subscribe", data: { channels: many.slice(0, 20) } })).error, undefined);
    await client.request({ id: 52, type: "unsubscribe", data: { channels: many } });
  });

  test("without last_message: the messages of the last no-cursor window, as a long-poll without cursor", async () => {
    const before = await server.bus.publish("test", "room-w", { type: "just-before" });
    assert.deepEqual(await client.request({ id: 60, type: "subscribe", data: { channels: ["room-w"], last_message: null } }), {
      id: 60,
      type: "subscribe",
      data: { channels: ["room-w"] },
    });
    assert.deepEqual(ids(await client.pushes(1)), [before]);
    const live = await server.bus.publish("test", "room-w", { type: "live" });
    assert.deepEqual(ids(await client.pushes(1)), [live]);
    await client.request({ id: 61, type: "unsubscribe", data: { channels: ["room-w"] } });
  });

  test("resume from a cursor: what was missed first, then live, no gap and no duplicate at the seam", async () => {
    const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
    const first = await publishN(server, "room-s", 20);
    const all = [...first];
    // Publish the rest while the subscription catches up, one per event-loop turn.
    const background = (async () => {
      for (let i = 20; i < 300; i++) {
        all.push(await server.bus.publish("test", i % 3 === 0 ? "room-other" : "room-s", { type: "t", n: i }));
        await yieldTurn();
      }
    })();
    const reply = await c.request({ id: 1, type: "subscribe", data: { channels: ["room-s"], last_message: first[9] } });
    assert.deepEqual(reply, { id: 1, type: "subscribe", data: { channels: ["room-s"] } });
    await background;
    const expected = all.slice(10).filter((_, i) => {
      const n = i + 10;
      return n < 20 || n % 3 !== 0;
    });
    const got = await c.pushes(expected.length);
    assert.deepEqual(ids(got), expected);
    await nothingElse(c);
    await c.close();
  });

  test("a message of any size is framed correctly (7-bit, 16-bit and 64-bit lengths)", async () => {
    const big = await startServer({ maxMessageBytes: 200_000, accessRules: [{ channels: "room-*" }] });
    try {
      const c = await FrameClient.open(wsUrl(big, { token: await token("7") }));
      await c.request({ id: 1, type: "subscribe", data: { channels: ["room-1"] } });
      // The push wraps the message in about 150 bytes: sizes land on both sides of 126 and 65536.
      for (const size of [1, 10, 60, 200, 65_300, 65_500, 70_000, 150_000]) {
        const pad = "é".repeat(Math.floor(size / 2)) + "x".repeat(size % 2);
        const id = await big.bus.publish("test", "room-1", { type: "t", pad });
        const [push] = await c.pushes(1);
        assert.equal(push!.id, id);
        assert.equal(push!.data.message.pad, pad);
      }
      await c.close();
    } finally {
      await big.close();
    }
  });
});

describe("WebSocket: fan-out", () => {
  test("a message is framed once; every subscriber gets the same bytes", async () => {
    const server = await startServer({ accessRules: [{ channels: "room-*" }] });
    try {
      const clients = await Promise.all(["7", "8", "9"].map(async (u) => FrameClient.open(wsUrl(server, { token: await token(u) }))));
      for (const c of clients) await c.request({ id: 1, type: "subscribe", data: { channels: ["room-f"] } });
      const raw = clients.map((c) => new Promise<Buffer>((r) => c.ws.once("message", (data) => r(data as Buffer))));
      const [[, stored]] = (await Promise.all([
        once(server.bus, "message:published"),
        server.bus.publish("test", "room-f", { type: "t", text: "same for all" }),
      ])) as [[string, StoredMessage[]], string];
      const frame = pushFrame(stored[0]!);
      assert.equal(pushFrame(stored[0]!), frame, "the frame is cached with the message");
      // The header (2, 4 or 10 bytes after the length marker), then the payload every socket received.
      const header = frame[1] === 126 ? 4 : frame[1] === 127 ? 10 : 2;
      const payload = frame.subarray(header);
      assert.equal(frame[0], 0x81, "FIN + text");
      for (const bytes of await Promise.all(raw)) assert.deepEqual(bytes, payload);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await server.close();
    }
  });
});

describe("WebSocket: gap signal", () => {
  test("a cursor older than retention, or unknown, gets gap: true on the reply and resumes at the oldest retained", async () => {
    const store = new MemoryStore();
    // A tail as short as retention: what retention removed is gone from memory too.
    const server = await startServer({
      storeInstance: store,
      tailSize: 3,
      databases: { test: { retention: { maxCount: 3 } } },
      accessRules: [{ channels: "room-*" }],
    });
    try {
      const published = await publishN(server, "room-1", 10);
      await server.bus.runRetention();
      const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      assert.deepEqual(await c.request({ id: 1, type: "subscribe", data: { channels: ["room-1"], last_message: published[1] } }), {
        id: 1,
        type: "subscribe",
        data: { channels: ["room-1"], gap: true },
      });
      assert.deepEqual(ids(await c.pushes(3)), published.slice(7));
      await c.close();

      const d = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      assert.deepEqual(await d.request({ id: 2, type: "subscribe", data: { type: "room", id: 1, last_message: "0000zzzzz:9999999999999999" } }), {
        id: 2,
        type: "subscribe",
        data: { group: "room-1", gap: true },
      });
      assert.deepEqual(ids(await d.pushes(3)), published.slice(7));
      // A cursor inside retention: no gap.
      assert.deepEqual(await d.request({ id: 3, type: "subscribe", data: { channels: ["room-2"], last_message: published[8] } }), {
        id: 3,
        type: "subscribe",
        data: { channels: ["room-2"] },
      });
      await d.close();
    } finally {
      await server.close();
    }
  });
});

describe("WebSocket: thousands of subscriptions on one socket", () => {
  test("3000 group subscriptions, pushes routed to the right groups, other clients unaffected", async () => {
    const server = await startServer({
      accessRules: [{ channels: "doc-*" }],
      ws: { maxSubscriptions: 5000, maxFramesPerSecond: 100_000, maxPendingRequests: 5000 },
    });
    try {
      const heavy = await FrameClient.open(wsUrl(server, { token: await token("7") }));
      const light = await FrameClient.open(wsUrl(server, { token: await token("8") }));
      const n = 3000;
      for (let i = 0; i < n; i++) heavy.send({ id: i, type: "subscribe", data: { type: "doc", id: i } });
      for (let i = 0; i < n; i++) {
        const reply = await heavy.waitFor((f) => f.id === i, `reply ${i}`);
        assert.deepEqual(reply, { id: i, type: "subscribe", data: { group: `doc-${i}` } });
      }
      await light.request({ id: 1, type: "subscribe", data: { type: "doc", id: 7 } });
      const targets = [0, 7, 1234, 2999, 3001];
      const published = [];
      for (const t of targets) published.push(await server.bus.publish("test", `doc-${t}`, { type: "t", t }));
      const got = await heavy.pushes(4);
      assert.deepEqual(
        got.map((f) => f.data.group),
        ["doc-0", "doc-7", "doc-1234", "doc-2999"],
      );
      assert.deepEqual(ids(await light.pushes(1)), [published[1]]);
      const unsub = Array.from({ length: n }, (_, i) => `doc-${i}`);
      for (let i = 0; i < n; i += 100) {
        await heavy.request({ id: `u${i}`, type: "unsubscribe", data: { channels: unsub.slice(i, i + 100) } });
      }
      await server.bus.publish("test", "doc-7", { type: "t" });
      assert.equal((await light.pushes(1)).length, 1);
      heavy.send({ id: "probe", type: "ping" });
      assert.deepEqual(await heavy.next(), { id: "probe", type: "pong" });
      await heavy.close();
      await light.close();
    } finally {
      await server.close();
    }
  });
});
