/**
 * The Tryton long-poll wire (DESIGN 5.1), asserted on the exact response text.
 */
import { describe, it, before, after, mock } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { call, errorBody, oneMessage, parked, poll, publish, publisher } from "./longpoll-client.js";

describe("long-poll wire", () => {
  let server: TidingsServer;
  let user1: string;
  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }], pollTimeoutMs: 30_000, maxBatch: 5 });
    user1 = await token("1");
  });
  after(() => server.close());

  it("answers with the first message after the cursor as {channel, message}", async () => {
    const cursor = await publish(server, "room-1", { type: "t", n: 0 });
    const id = await publish(server, "room-1", { type: "t", n: 1 });
    await publish(server, "room-1", { type: "t", n: 2 });
    const r = await poll(server, user1, { last_message: cursor, channels: ["room-1"] });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(r.text, oneMessage("room-1", id, { type: "t", n: 1 }));
  });

  it("parks until a message arrives on one of its channels", async () => {
    const cursor = await publish(server, "room-2", { type: "t" });
    const pending = poll(server, user1, { last_message: cursor, channels: ["room-2", "room-3"] });
    await parked(server, 1);
    await publish(server, "room-4", { type: "t" }); // not one of its channels
    const id = await publish(server, "room-3", { type: "hello", text: "hi" });
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.text, oneMessage("room-3", id, { type: "hello", text: "hi" }));
  });

  it("always listens to the caller's own user:<id> channel", async () => {
    const cursor = await publish(server, "room-5", { type: "t" });
    const pending = poll(server, user1, { last_message: cursor, channels: [] });
    await parked(server, 1);
    await publish(server, "user:2", { type: "for-someone-else" });
    const id = await publish(server, "user:1", { type: "for-me" });
    assert.equal((await pending).text, oneMessage("user:1", id, { type: "for-me" }));
  });

  it("replaces any message_id the publisher sent, and answers publish with it", async () => {
    const cursor = await publish(server, "room-6", { type: "t" });
    const r = await call(`${server.url}/test/publish`, {
      token: await publisher(),
      body: { channel: "room-6", message: { message_id: "forged", type: "t", x: 1 } },
    });
    assert.equal(r.status, 200);
    const id = (r.json as { message_id: string }).message_id;
    assert.equal(r.text, JSON.stringify({ message_id: id }));
    assert.ok(id > cursor);
    const got = await poll(server, user1, { last_message: cursor, channels: ["room-6"] });
    assert.equal(got.text, oneMessage("room-6", id, { type: "t", x: 1 }));
  });

  it("passes Tryton's JSON type hints through untouched", async () => {
    const cursor = await publish(server, "room-7", { type: "t" });
    const message = {
      type: "record-changed",
      write_date: { __class__: "datetime", year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 58, microsecond: 123456 },
      date: { __class__: "date", year: 2024, month: 12, day: 31 },
      time: { __class__: "time", hour: 8, minute: 0, second: 0, microsecond: 0 },
      amount: { __class__: "Decimal", decimal: "1234.5600" },
      data: { __class__: "bytes", base64: "AAEC/f7/" },
      duration: { __class__: "timedelta", seconds: 5400.25 },
      nested: [{ __class__: "Decimal", decimal: "-0.00" }, null, "é 漢字"],
    };
    const id = await publish(server, "room-7", message);
    const r = await poll(server, user1, { last_message: cursor, channels: ["room-7"] });
    assert.equal(r.text, oneMessage("room-7", id, message));
  });

  it("publishes a batch atomically and answers its message_ids in order", async () => {
    const cursor = await publish(server, "room-8", { type: "t" });
    const r = await call(`${server.url}/test/publish`, {
      token: await publisher(),
      body: {
        messages: [
          { channel: "room-8", message: { type: "t", n: 1 } },
          { channel: "room-9", message: { type: "t", n: 2 } },
          { channel: "room-8", message: { type: "t", n: 3 } },
        ],
      },
    });
    assert.equal(r.status, 200);
    const ids = (r.json as { message_ids: string[] }).message_ids;
    assert.equal(r.text, JSON.stringify({ message_ids: ids }));
    assert.equal(ids.length, 3);
    assert.deepEqual([...ids].sort(), ids, "in log order");
    const got = await poll(server, user1, { last_message: cursor, channels: ["room-8", "room-9"], max_messages: 5 });
    assert.deepEqual(
      (got.json as { messages: Array<{ channel: string; message: { message_id: string } }> }).messages.map((m) => [m.channel, m.message.message_id]),
      [["room-8", ids[0]], ["room-9", ids[1]], ["room-8", ids[2]]],
    );
  });

  it("publishes a notification with notify()", async () => {
    const cursor = await publish(server, "room-10", { type: "t" });
    const r = await call(`${server.url}/test/notify`, {
      token: await publisher(),
      body: { title: "Invoice posted", body: "INV/42", priority: 2, user: 1 },
    });
    assert.equal(r.status, 200);
    const id = (r.json as { message_id: string }).message_id;
    const got = await poll(server, user1, { last_message: cursor, channels: [] });
    assert.equal(got.text, oneMessage("user:1", id, { type: "notification", kind: "notification", title: "Invoice posted", body: "INV/42", priority: 2 }));
    const bad = await call(`${server.url}/test/notify`, { token: await publisher(), body: { title: "a\nb", user: 1 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, errorBody("TIDINGS_ERR_NOTIFY_INVALID", "title must be a single line."));
  });

  describe("max_messages (opt-in batch)", () => {
    it("answers all pending messages up to n under `messages`, the first also as {channel, message}", async () => {
      const cursor = await publish(server, "room-b", { type: "t" });
      const a = await publish(server, "room-b", { type: "t", n: 1 });
      const b = await publish(server, "room-c", { type: "t", n: 2 });
      const c = await publish(server, "room-b", { type: "t", n: 3 });
      const r = await poll(server, user1, { last_message: cursor, channels: ["room-b", "room-c"], max_messages: 2 });
      const first = { message_id: a, type: "t", n: 1 };
      assert.equal(
        r.text,
        JSON.stringify({
          channel: "room-b",
          message: first,
          messages: [
            { channel: "room-b", message: first },
            { channel: "room-c", message: { message_id: b, type: "t", n: 2 } },
          ],
        }),
      );
      const rest = await poll(server, user1, { last_message: b, channels: ["room-b", "room-c"], max_messages: 5 });
      const third = { message_id: c, type: "t", n: 3 };
      assert.equal(rest.text, JSON.stringify({ channel: "room-b", message: third, messages: [{ channel: "room-b", message: third }] }));
    });

    it("treats null like absent: one message, no `messages` key", async () => {
      const cursor = await publish(server, "room-d", { type: "t" });
      const id = await publish(server, "room-d", { type: "t" });
      await publish(server, "room-d", { type: "t" });
      const r = await poll(server, user1, { last_message: cursor, channels: ["room-d"], max_messages: null });
      assert.equal(r.text, oneMessage("room-d", id, { type: "t" }));
    });

    it("accepts 1 to the server's batch limit and refuses anything else with 400", async () => {
      const cursor = await publish(server, "room-e", { type: "t" });
      await publish(server, "room-e", { type: "t" });
      for (const n of [1, 5]) {
        assert.equal((await poll(server, user1, { last_message: cursor, channels: ["room-e"], max_messages: n })).status, 200, String(n));
      }
      for (const n of ["0", "-1", "6", "1.5", '"2"', "true", "[2]", "1e309", "{}"]) {
        const r = await poll(server, user1, `{"last_message":${JSON.stringify(cursor)},"channels":["room-e"],"max_messages":${n}}`);
        assert.equal(r.status, 400, n);
        assert.equal(r.text, errorBody("TIDINGS_ERR_REQUEST_INVALID", "max_messages must be a positive integer up to the server's batch limit."));
      }
    });
  });

  describe("gaps", () => {
    let small: TidingsServer;
    before(async () => {
      small = await startServer({
        accessRules: [{ channels: "room-*" }],
        tailSize: 2,
        databases: { test: { retention: { maxCount: 3 } } },
        pollTimeoutMs: 30_000,
      });
    });
    after(() => small.close());

    it('adds "gap": true for a cursor older than retention and starts at the oldest retained message', async () => {
      const sent: string[] = [];
      for (let n = 0; n < 6; n++) sent.push(await publish(small, "room-g", { type: "t", n }));
      await small.bus.runRetention();
      const r = await poll(small, user1, { last_message: sent[0], channels: ["room-g"] });
      assert.equal(r.text, JSON.stringify({ channel: "room-g", message: { message_id: sent[3], type: "t", n: 3 }, gap: true }));
      // Resuming from what it got: no gap any more.
      const next = await poll(small, user1, { last_message: sent[3], channels: ["room-g"] });
      assert.equal(next.text, oneMessage("room-g", sent[4]!, { type: "t", n: 4 }));
    });

    it('adds "gap": true for a cursor of another store (epoch) or one that is not ours', async () => {
      const sent = await publish(small, "room-h", { type: "t" });
      const { messages } = await small.bus.store.read("test", { after: null, channels: ["room-h"], limit: 1 });
      assert.equal(messages[0]!.id, sent, "the oldest retained message on room-h");
      for (const foreign of ["000000001:0000000000000002", "not-an-id"]) {
        const r = await poll(small, user1, { last_message: foreign, channels: ["room-h"] });
        assert.equal(r.text, JSON.stringify({ channel: "room-h", message: { message_id: sent, type: "t" }, gap: true }), foreign);
      }
    });
  });
});

describe("long-poll wire: waiting", () => {
  let server: TidingsServer;
  let user1: string;
  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }], pollTimeoutMs: 50 });
    user1 = await token("1");
  });
  after(() => server.close());

  it('answers {"channel":null,"message":null} when the poll timeout passes', async () => {
    const cursor = await publish(server, "room-1", { type: "t" });
    const r = await poll(server, user1, { last_message: cursor, channels: ["room-1"] });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{"channel":null,"message":null}');
    const batch = await poll(server, user1, { last_message: cursor, channels: ["room-1"], max_messages: 3 });
    assert.equal(batch.text, '{"channel":null,"message":null,"messages":[]}');
  });

  it("without a cursor, answers what arrived in the last five seconds, and never older", async () => {
    // Date is mocked so "six seconds ago" needs no waiting; tokens were signed before.
    mock.timers.enable({ apis: ["Date"], now: Date.now() });
    try {
      await publish(server, "room-w", { type: "old" });
      await publish(server, "room-old", { type: "old" });
      mock.timers.tick(6_000);
      const a = await publish(server, "room-w", { type: "new", n: 1 });
      const b = await publish(server, "room-w", { type: "new", n: 2 });
      mock.timers.tick(4_000);
      const absent = await poll(server, user1, { channels: ["room-w"] });
      assert.equal(absent.text, oneMessage("room-w", a, { type: "new", n: 1 }));
      const nullCursor = await poll(server, user1, { last_message: null, channels: ["room-w"] });
      assert.equal(nullCursor.text, absent.text);
      const all = await poll(server, user1, { channels: ["room-w"], max_messages: 10 });
      assert.deepEqual(
        (all.json as { messages: Array<{ message: { message_id: string } }> }).messages.map((m) => m.message.message_id),
        [a, b],
      );
      // Only an old message there: the poll waits for new ones instead.
      const old = await poll(server, user1, { channels: ["room-old"] });
      assert.equal(old.text, '{"channel":null,"message":null}');
    } finally {
      mock.timers.reset();
    }
  });
});
