import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { StaticSessionVerifier } from "../../src/auth/tryton-session.js";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const CODE = (code: string) => ({ code });

describe("WebSocket: rohrpost frames", () => {
  let server: TidingsServer;
  let client: FrameClient;

  before(async () => {
    server = await startServer({
      databases: { test: {}, off: { bus: false } },
      accessRules: [{ channels: "room-*" }],
      sessionVerifier: new StaticSessionVerifier([{ db: "test", login: "admin", userId: "1", key: "k3y" }]),
    });
    client = await FrameClient.open(wsUrl(server, { token: await token("7") }));
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  test("malformed frames get rohrpost's error replies and the connection stays open", async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ["", { error: "Received empty message.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ["[1, 2, 3]", { error: "Expected a JSON object as message.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['"ping"', { error: "Expected a JSON object as message.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ["{}", { error: "Missing required field 'type'.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['{"id": 5}', { id: 5, error: "Missing required field 'type'.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['{"type": "ping"}', { type: "ping", error: "Missing required field 'id'.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['{"id": 6, "type": 3}', { id: 6, error: "The field 'type' must be a non-empty string.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['{"id": {"a": 1}, "type": "ping"}', { type: "ping", error: "The field 'id' must be a string, a number, a boolean or null.", data: CODE("TIDINGS_ERR_FRAME_INVALID") }],
      ['{"id": 7, "type": "no-such-handler"}', { id: 7, type: "no-such-handler", error: "Unknown message type 'no-such-handler'.", data: CODE("TIDINGS_ERR_HANDLER_UNKNOWN") }],
    ];
    for (const [text, expected] of cases) {
      client.send(text);
      assert.deepEqual(await client.next(), expected, `reply to ${JSON.stringify(text)}`);
    }
    client.send("{not json");
    const bad = await client.next();
    assert.match(bad.error!, /^Could not decode JSON message\. Error: /);
    assert.deepEqual(bad.data, CODE("TIDINGS_ERR_FRAME_INVALID"));
    assert.deepEqual(Object.keys(bad).sort(), ["data", "error"]);
    // Still open and answering.
    assert.deepEqual(await client.request({ id: 8, type: "ping" }), { id: 8, type: "pong" });
  });

  test("a binary frame gets an error reply", async () => {
    client.send(Buffer.from([1, 2, 3]));
    assert.deepEqual(await client.next(), { error: "Binary frames are not supported: send JSON text frames.", data: CODE("TIDINGS_ERR_FRAME_INVALID") });
    assert.deepEqual(await client.request({ id: 9, type: "ping" }), { id: 9, type: "pong" });
  });

  test("ping → pong echoes id and data, of any JSON type", async () => {
    assert.deepEqual(await client.request({ id: 1234, type: "ping", data: [1, 2, 3, 4] }), { id: 1234, type: "pong", data: [1, 2, 3, 4] });
    assert.deepEqual(await client.request({ id: "abc", type: "ping", data: { some: "data" } }), { id: "abc", type: "pong", data: { some: "data" } });
    assert.deepEqual(await client.request({ id: 0, type: "ping", data: null }), { id: 0, type: "pong", data: null });
    client.send('{"id": null, "type": "ping"}');
    assert.deepEqual(await client.next(), { id: null, type: "pong" });
    client.send('{"id": false, "type": "ping", "data": "x"}');
    assert.deepEqual(await client.next(), { id: false, type: "pong", data: "x" });
  });

  test("publish needs the publisher role; a publisher gets message ids", async () => {
    assert.deepEqual(await client.request({ id: 1, type: "publish", data: { channel: "room-1", message: { type: "t" } } }), {
      id: 1,
      type: "publish",
      error: "Publishing needs the publisher or admin role.",
      data: CODE("TIDINGS_ERR_ROLE_FORBIDDEN"),
    });
    const pub = await FrameClient.open(wsUrl(server, { token: await token("app", { role: "publisher" }) }));
    try {
      const one = await pub.request({ id: 2, type: "publish", data: { channel: "room-1", message: { type: "t", message_id: "mine" } } });
      assert.equal(one.type, "publish");
      assert.match(one.data.message_id, /^[0-9a-z]{9}:\d{16}$/);
      const many = await pub.request({
        id: 3,
        type: "publish",
        data: { messages: [{ channel: "room-1", message: { type: "a" } }, { channel: "room-2", message: { type: "b" } }] },
      });
      assert.equal(many.data.message_ids.length, 2);
      assert.ok(many.data.message_ids[0] > one.data.message_id && many.data.message_ids[1] > many.data.message_ids[0]);
      assert.deepEqual(await pub.request({ id: 4, type: "publish", data: { channel: "room-1", message: "text" } }), {
        id: 4,
        type: "publish",
        error: "A message must be a JSON object.",
        data: CODE("TIDINGS_ERR_MESSAGE_INVALID"),
      });
      assert.deepEqual(await pub.request({ id: 5, type: "publish", data: [] }), {
        id: 5,
        type: "publish",
        error: 'The publish data must be a JSON object: {"channel": "...", "message": {"type": "...", ...}} or {"messages": [{"channel", "message"}, ..]}.',
        data: CODE("TIDINGS_ERR_REQUEST_INVALID"),
      });
    } finally {
      await pub.close();
    }
  });

  test("without credentials at upgrade: only ping until auth", async () => {
    const anon = await FrameClient.open(wsUrl(server));
    try {
      assert.deepEqual(await anon.request({ id: 1, type: "ping" }), { id: 1, type: "pong" });
      const refused = await anon.request({ id: 2, type: "subscribe", data: { channels: ["room-1"] } });
      assert.equal(refused.error, 'Authentication required: send {"type": "auth", "data": {"token": …}} first, or auth_jwt.');
      assert.deepEqual(refused.data, CODE("TIDINGS_ERR_AUTH_REQUIRED"));
      assert.deepEqual(await anon.request({ id: 3, type: "auth", data: { token: "garbage" } }), {
        id: 3,
        type: "auth",
        error: "Invalid token.",
        data: CODE("TIDINGS_ERR_AUTH_INVALID"),
      });
      assert.deepEqual(await anon.request({ id: 4, type: "auth", data: 42 }), {
        id: 4,
        type: "auth",
        error: 'auth needs {"token": "<JWT>"} or {"session": "<base64 login:user_id:key>"}.',
        data: CODE("TIDINGS_ERR_REQUEST_INVALID"),
      });
      const other = await token("7", { db: "elsewhere" });
      assert.deepEqual((await anon.request({ id: 5, type: "auth", data: { token: other } })).data, CODE("TIDINGS_ERR_AUTH_WRONG_DB"));
      const ok = await anon.request({ id: 6, type: "auth", data: { token: await token("7") } });
      assert.equal(ok.type, "auth");
      assert.equal(ok.data.user, "7");
      assert.equal(ok.data.role, "subscriber");
      assert.equal(typeof ok.data.expires_at, "number");
      assert.deepEqual(await anon.request({ id: 7, type: "subscribe", data: { channels: ["room-1"] } }), {
        id: 7,
        type: "subscribe",
        data: { channels: ["room-1"] },
      });
    } finally {
      await anon.close();
    }
  });

  test("auth with a Tryton session, and the token as plain data", async () => {
    const c = await FrameClient.open(wsUrl(server));
    try {
      const session = Buffer.from("admin:1:k3y").toString("base64");
      const ok = await c.request({ id: 1, type: "auth", data: { session } });
      assert.deepEqual(ok, { id: 1, type: "auth", data: { user: "1", role: "subscriber", expires_at: null } });
      // Same user again with a token given as a bare string: accepted (a refresh).
      const again = await c.request({ id: 2, type: "auth", data: await token("1") });
      assert.equal(again.data.user, "1");
      const wrong = Buffer.from("admin:1:nope").toString("base64");
      assert.deepEqual((await c.request({ id: 3, type: "auth", data: { session: wrong } })).error, "Unknown or expired Tryton session.");
    } finally {
      await c.close();
    }
  });

  test("auth_jwt on any request authenticates it (rohrpost-js sends it, empty when it has none)", async () => {
    const c = await FrameClient.open(wsUrl(server));
    try {
      assert.deepEqual((await c.request({ id: 1, type: "subscribe", auth_jwt: "", data: { type: "room", id: 1 } })).data, CODE("TIDINGS_ERR_AUTH_REQUIRED"));
      const t = await token("7");
      assert.deepEqual(await c.request({ id: 2, type: "subscribe", auth_jwt: t, data: { type: "room", id: 1 } }), {
        id: 2,
        type: "subscribe",
        data: { group: "room-1" },
      });
      assert.deepEqual(await c.request({ id: 3, type: "unsubscribe", auth_jwt: "not-a-jwt", data: { type: "room", id: 1 } }), {
        id: 3,
        type: "unsubscribe",
        error: "Invalid token.",
        data: CODE("TIDINGS_ERR_AUTH_INVALID"),
      });
    } finally {
      await c.close();
    }
  });

  test("upgrades are refused with the JSON error of every HTTP route", async () => {
    const refusal = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const req = httpRequest(`${server.url}${path}`, {
          headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...headers },
        });
        req.on("response", (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        req.on("upgrade", () => reject(new Error("upgraded")));
        req.on("error", reject);
        req.end();
      });
    assert.deepEqual(await refusal("/test/nope"), { status: 404, body: { error: { code: "TIDINGS_ERR_NOT_FOUND", message: "No such route." } } });
    assert.deepEqual(await refusal("/unknown/ws"), { status: 404, body: { error: { code: "TIDINGS_ERR_DB_UNKNOWN", message: 'Unknown database "unknown".' } } });
    assert.deepEqual(await refusal("/off/ws"), { status: 501, body: { error: { code: "TIDINGS_ERR_DB_BUS_DISABLED", message: "The bus is disabled for database off." } } });
    assert.deepEqual(await refusal("/test/ws?token=bad"), { status: 401, body: { error: { code: "TIDINGS_ERR_AUTH_INVALID", message: "Invalid token." } } });
    const cookie = `tidings_session=${await token("7")}`;
    assert.deepEqual(await refusal("/test/ws", { cookie, origin: "https://evil.example" }), {
      status: 403,
      body: { error: { code: "TIDINGS_ERR_ORIGIN_FORBIDDEN", message: 'Cookie credentials are not accepted from origin "https://evil.example".' } },
    });
    // The same cookie from the server's own origin is fine.
    const host = new URL(server.url).host;
    const same = await FrameClient.open(wsUrl(server), { headers: { cookie, origin: `http://${host}` } });
    assert.equal((await same.request({ id: 1, type: "subscribe", data: { channels: ["user:7"] } })).type, "subscribe");
    await same.close();
  });

  test("a Bearer header at upgrade authenticates (Node clients)", async () => {
    const c = await FrameClient.open(wsUrl(server), { headers: { authorization: `Bearer ${await token("9")}` } });
    assert.deepEqual(await c.request({ id: 1, type: "subscribe", data: { channels: ["user:9"] } }), { id: 1, type: "subscribe", data: { channels: ["user:9"] } });
    await c.close();
  });
});
