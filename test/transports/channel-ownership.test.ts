/**
 * Built-in channel ownership wins over every token pattern and access rule, on every
 * transport: `user:<id>` and `notification:<id>` are their user's own, `client:<id>` its
 * first user's. Publishing is not reading: publishers still publish to them.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token, request } from "../helpers/server.js";
import { call } from "./longpoll-client.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const FORBIDDEN = (channel: string) => ({
  error: { code: "TIDINGS_ERR_CHANNEL_FORBIDDEN", message: `Not allowed to read channel ${JSON.stringify(channel)}.`, channel },
});

describe("channel ownership over patterns and rules", () => {
  let server: TidingsServer;
  /** Cursor before user 8's messages: a poll allowed to read them would answer at once. */
  let cursor: string;

  before(async () => {
    // The rule opens every channel to every user; ownership must still hold.
    server = await startServer({ accessRules: [{ channels: "*" }], pollTimeoutMs: 2_000 });
    cursor = await server.bus.publish("test", "room", { type: "start" });
    await server.bus.publish("test", "notification:8", { type: "secret", for: 8 });
    await server.bus.publish("test", "user:8", { type: "secret", for: 8 });
    // User 8 uses its window's client channel first: it is 8's.
    const t8 = await token("8");
    const r = await call(`${server.url}/test/bus`, { token: t8, body: { last_message: cursor, channels: ["client:win-8"] } });
    assert.equal(r.status, 200, r.text);
    await server.bus.publish("test", "client:win-8", { type: "secret", for: 8 });
  });
  after(() => server.close());

  const patterns: Array<[string, string[]]> = [
    ["*", ["*"]],
    ["user:*,notification:*,client:*", ["user:*", "notification:*", "client:*"]],
    ["no pattern (the rule alone)", []],
  ];

  for (const [name, channels] of patterns) {
    describe(`token of user 7 with channels ${name}`, () => {
      let t7: string;
      before(async () => {
        t7 = await token("7", { channels });
      });

      for (const channel of ["notification:8", "user:8", "client:win-8"]) {
        it(`long-poll refuses ${channel}`, async () => {
          const r = await call(`${server.url}/test/bus`, { token: t7, body: { last_message: cursor, channels: [channel] } });
          assert.equal(r.status, 403, r.text);
          assert.deepEqual(r.json, FORBIDDEN(channel));
        });

        it(`SSE refuses ${channel}`, async () => {
          const res = await fetch(`${server.url}/test/events?channels=${encodeURIComponent(channel)}&last_message=${cursor}&token=${t7}`);
          assert.equal(res.status, 403);
          assert.deepEqual(await res.json(), FORBIDDEN(channel));
        });

        it(`WebSocket subscribe refuses ${channel}, with the token in the URL or in an auth frame`, async () => {
          const byUrl = await FrameClient.open(wsUrl(server, { token: t7 }));
          const byFrame = await FrameClient.open(wsUrl(server));
          try {
            assert.equal((await byFrame.request({ id: 0, type: "auth", data: { token: t7 } })).error, undefined);
            for (const client of [byUrl, byFrame]) {
              assert.deepEqual(await client.request({ id: 1, type: "subscribe", data: { channels: [channel], last_message: cursor } }), {
                id: 1,
                type: "subscribe",
                error: `Not allowed to read channel ${JSON.stringify(channel)}.`,
                data: { code: "TIDINGS_ERR_CHANNEL_FORBIDDEN", channel },
              });
            }
          } finally {
            await byUrl.close();
            await byFrame.close();
          }
        });
      }

      it("still reads its own channels and what the pattern or rule opens", async () => {
        const r = await call(`${server.url}/test/bus`, { token: t7, body: { last_message: cursor, channels: ["notification:7", "room"] } });
        assert.equal(r.status, 200, r.text);
      });
    });
  }

  it("lets an admin read every user's channels", async () => {
    const admin = await token("1", { role: "admin" });
    const r = await call(`${server.url}/test/bus`, { token: admin, body: { last_message: cursor, channels: ["notification:8"] } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((r.json as { message: { for: number } }).message.for, 8);
  });

  it("lets publishers publish to another user's channels over HTTP and WebSocket (publishing is not reading)", async () => {
    const publisher = await token("app", { role: "publisher" });
    for (const channel of ["user:8", "notification:8", "client:win-8"]) {
      const r = await request(`${server.url}/test/publish`, { token: publisher, body: { channel, message: { type: "p" } } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const ws = await FrameClient.open(wsUrl(server, { token: publisher }));
    try {
      const reply = await ws.request({ id: 1, type: "publish", data: { channel: "user:8", message: { type: "p" } } });
      assert.equal(reply.error, undefined, JSON.stringify(reply));
      assert.equal(typeof reply.data.message_id, "string");
    } finally {
      await ws.close();
    }
  });
});
