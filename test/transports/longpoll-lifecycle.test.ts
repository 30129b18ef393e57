/**
 * Capacity and lifetime of long-polls: caps on parked polls (429), draining on close, and a
 * restart on the same SQLite file that loses nothing.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { errorBody, oneMessage, parked, poll, portOf, publish } from "./longpoll-client.js";

describe("long-poll: caps on parked polls", () => {
  let server: TidingsServer;
  const aborts: AbortController[] = [];
  before(async () => {
    server = await startServer({ pollTimeoutMs: 30_000, maxParkedPollsPerUser: 2, maxParkedPolls: 3 });
  });
  after(async () => {
    for (const a of aborts) a.abort();
    await server.close();
  });

  function parkFor(tok: string, cursor: string) {
    const abort = new AbortController();
    aborts.push(abort);
    return { abort, reply: poll(server, tok, { last_message: cursor, channels: [] }, "test", abort.signal) };
  }

  it("answers 429 past the per-user cap and past the total cap, and takes polls again once answered", async () => {
    const [u1, u2, u3] = await Promise.all([token("1"), token("2"), token("3")]);
    const cursor = await publish(server, "lobby", { type: "t" });
    const first = [parkFor(u1, cursor), parkFor(u1, cursor)];
    await parked(server, 2);
    const third = await poll(server, u1, { last_message: cursor, channels: [] });
    assert.equal(third.status, 429);
    assert.equal(third.text, errorBody("TIDINGS_ERR_LIMIT_POLLS", "At most 2 parked polls per user."));

    const other = parkFor(u2, cursor);
    await parked(server, 3);
    const overTotal = await poll(server, u3, { last_message: cursor, channels: [] });
    assert.equal(overTotal.status, 429);
    assert.equal(overTotal.text, errorBody("TIDINGS_ERR_LIMIT_POLLS", "The server has too many parked polls; retry shortly."));

    // The parked polls were not disturbed by the refusals, and still get their message.
    const forOne = await publish(server, "user:1", { type: "for-1" });
    for (const p of first) assert.equal((await p.reply).text, oneMessage("user:1", forOne, { type: "for-1" }));
    const forTwo = await publish(server, "user:2", { type: "for-2" });
    assert.equal((await other.reply).text, oneMessage("user:2", forTwo, { type: "for-2" }));
    // Their slots are free again.
    const again = await poll(server, u1, { last_message: cursor, channels: [] });
    assert.equal(again.text, oneMessage("user:1", forOne, { type: "for-1" }));
  });

  it("frees the slot of a client that went away", async () => {
    const u1 = await token("1");
    const cursor = await publish(server, "lobby", { type: "t" });
    const [a, b] = [parkFor(u1, cursor), parkFor(u1, cursor)];
    await parked(server, 2);
    a.abort.abort();
    await assert.rejects(a.reply);
    await parked(server, 1);
    const c = parkFor(u1, cursor);
    await parked(server, 2);
    const id = await publish(server, "user:1", { type: "t" });
    assert.equal((await b.reply).text, oneMessage("user:1", id, { type: "t" }));
    assert.equal((await c.reply).text, oneMessage("user:1", id, { type: "t" }));
  });
});

describe("long-poll: draining", () => {
  it("answers parked polls empty on close, and /readyz says 503 while draining", async () => {
    const server = await startServer({ pollTimeoutMs: 30_000 });
    const u1 = await token("1");
    const cursor = await publish(server, "lobby", { type: "t" });
    const single = poll(server, u1, { last_message: cursor, channels: [] });
    const batch = poll(server, u1, { last_message: cursor, channels: [], max_messages: 10 });
    await parked(server, 2);

    // A request whose head is still arriving when the drain starts: it is answered during the drain.
    const socket = connect(portOf(server), "127.0.0.1");
    await new Promise<void>((ok) => socket.once("connect", () => ok()));
    const response = new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (d) => (text += d.toString("utf8")));
      socket.on("close", () => resolve(text));
    });
    await new Promise<void>((ok) => socket.write("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n", () => ok()));

    const closing = server.close();
    assert.equal((await single).text, '{"channel":null,"message":null}');
    assert.equal((await batch).text, '{"channel":null,"message":null,"messages":[]}');
    socket.write("\r\n");
    const raw = await response;
    assert.match(raw, /^HTTP\/1\.1 503 /);
    assert.match(raw, /\r\nconnection: close\r\n/i);
    assert.ok(raw.endsWith('\r\n\r\n{"status":"draining"}'), raw);
    await closing;
    await server.close(); // twice is fine
  });
});

describe("long-poll: restart on the same SQLite file", () => {
  const dir = mkdtempSync(join(tmpdir(), `tidings-longpoll-${process.pid}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps cursors valid and loses nothing that was accepted", async () => {
    const store = `sqlite:${join(dir, "bus.db")}`;
    const u1 = await token("1");
    const first = await startServer({ store, pollTimeoutMs: 30_000 });
    const cursor = await publish(first, "user:1", { type: "t", n: 0 });
    const before = [await publish(first, "user:1", { type: "t", n: 1 }), await publish(first, "user:1", { type: "t", n: 2 })];
    const parkedPoll = poll(first, u1, { last_message: before[1], channels: [] });
    await parked(first, 1);
    await first.close();
    assert.equal((await parkedPoll).text, '{"channel":null,"message":null}');

    const second = await startServer({ store, pollTimeoutMs: 30_000 });
    try {
      const after = await publish(second, "user:1", { type: "t", n: 3 });
      const r = await poll(second, u1, { last_message: cursor, channels: [], max_messages: 10 });
      const ids = (r.json as { messages: Array<{ message: { message_id: string } }>; gap?: boolean }).messages.map((m) => m.message.message_id);
      assert.deepEqual(ids, [...before, after]);
      assert.equal((r.json as { gap?: boolean }).gap, undefined);
      assert.equal((await poll(second, u1, { last_message: before[1], channels: [] })).text, oneMessage("user:1", after, { type: "t", n: 3 }));
    } finally {
      await second.close();
    }
  });
});
