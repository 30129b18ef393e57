/**
 * Batched long-polls are bounded by bytes (issue 9, item 5): an answer stops at
 * maxResponseBytes (always carrying one message), and one user's answers that its clients
 * do not read are capped at maxUnsentBytesPerUser over all its connections. The probe's
 * attack: max_messages 1000 on a channel of 60 KB messages, from sockets that never read.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import type { ServerResponse } from "node:http";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { poll, portOf } from "./longpoll-client.js";

const BIG = "x".repeat(60_000);
const MESSAGES = 50;
const MIB = 1024 * 1024;

interface Batch {
  channel: string | null;
  messages?: Array<{ channel: string; message: { message_id: string; n: number } }>;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("long-poll answers bounded by bytes", () => {
  let server: TidingsServer;
  let base: string;
  let ids: string[];

  before(async () => {
    server = await startServer({ accessRules: [{ channels: "big" }], pollTimeoutMs: 30_000 });
    base = await server.bus.publish("test", "other", { type: "start" });
    ids = [];
    for (let n = 0; n < MESSAGES; n++) ids.push(await server.bus.publish("test", "big", { type: "blob", n, data: BIG }));
  });
  after(() => server.close());

  it("a batch stops before maxResponseBytes; re-polling from its last message reads everything once, in order", async () => {
    const tok = await token("5");
    const got: string[] = [];
    let cursor = base;
    for (let round = 0; round < 10 && got.length < MESSAGES; round++) {
      const r = await poll(server, tok, { last_message: cursor, channels: ["big"], max_messages: 1000 });
      assert.equal(r.status, 200);
      assert.ok(Buffer.byteLength(r.text) <= MIB, `answer of ${Buffer.byteLength(r.text)} bytes`);
      const batch = (r.json as Batch).messages!;
      assert.equal(batch.length, 16, "16 messages of 60 KB, the first one twice, fit in 1 MiB");
      for (const m of batch) got.push(m.message.message_id);
      cursor = got[got.length - 1]!;
      if (got.length + 16 > MESSAGES) break;
    }
    const rest = await poll(server, tok, { last_message: cursor, channels: ["big"], max_messages: 1000 });
    for (const m of (rest.json as Batch).messages!) got.push(m.message.message_id);
    assert.deepEqual(got, ids);
  });

  it("an answer carries one message even when that message alone is larger than maxResponseBytes", async () => {
    const small = await startServer({ accessRules: [{ channels: "big" }], maxResponseBytes: 16 * 1024 });
    try {
      const first = await small.bus.publish("test", "big", { type: "blob", n: 0, data: BIG });
      const second = await small.bus.publish("test", "big", { type: "blob", n: 1, data: BIG });
      const tok = await token("5");
      const r = await poll(small, tok, { last_message: null, channels: ["big"], max_messages: 1000 });
      assert.equal(r.status, 200);
      assert.deepEqual((r.json as Batch).messages!.map((m) => m.message.message_id), [first]);
      const next = await poll(small, tok, { last_message: first, channels: ["big"], max_messages: 1000 });
      assert.deepEqual((next.json as Batch).messages!.map((m) => m.message.message_id), [second]);
    } finally {
      await small.close();
    }
  });

  it("sockets that pipeline max_messages 1000 polls and never read hold at most maxUnsentBytesPerUser (plus one answer); others are served", async () => {
    const attacker = await token("7");
    const body = JSON.stringify({ last_message: base, channels: ["big"], max_messages: 1000 });
    const one = `POST /test/bus HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${attacker}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const responses: ServerResponse[] = [];
    const onRequest = (_req: unknown, res: ServerResponse): void => void responses.push(res);
    server.http.on("request", onRequest);
    const SOCKETS = 4;
    const PIPELINED = 16; // 64 answers of 1 MiB: several times what the kernel's buffers take
    const sockets = await Promise.all(
      Array.from(
        { length: SOCKETS },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect(portOf(server), "127.0.0.1", () => resolve(s));
            s.once("error", reject);
          }),
      ),
    );
    try {
      for (const s of sockets) {
        s.pause(); // never reads
        s.on("error", () => {});
        s.write(one.repeat(PIPELINED));
      }
      await until("every pipelined poll to be answered", () => responses.length === SOCKETS * PIPELINED && responses.every((r) => r.writableEnded));
      const bound = 8 * MIB + MIB;
      assert.ok(server.unsent.total <= bound, `${server.unsent.total} bytes of unread answers held`);
      assert.ok(server.unsentHttpBytes() <= bound, `${server.unsentHttpBytes()} bytes queued on sockets`);
      const refused = (await server.bus.metrics.refused.get()).values.find((v) => v.labels.reason === "unsent")?.value ?? 0;
      assert.ok(refused > 0, "some answers were refused with 429");

      // Another user is served as usual, and the attacker is told clearly.
      const other = await poll(server, await token("8"), { last_message: base, channels: ["big"], max_messages: 1000 });
      assert.equal(other.status, 200);
      assert.equal((other.json as Batch).messages!.length, 16);
      const again = await poll(server, attacker, { last_message: base, channels: ["big"], max_messages: 1000 });
      assert.equal(again.status, 429);
      assert.equal((again.json as { error: { code: string } }).error.code, "TIDINGS_ERR_LIMIT_UNSENT");
    } finally {
      server.http.off("request", onRequest);
      for (const s of sockets) s.destroy();
    }
    // Gone clients release what they held: the attacker's next poll is answered.
    await until("the attacker's held bytes to be released", () => server.unsent.total === 0);
    const after = await poll(server, attacker, { last_message: base, channels: ["big"], max_messages: 1000 });
    assert.equal(after.status, 200);
  });
});
