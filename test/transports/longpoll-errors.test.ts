/**
 * Bad input on the long-poll and publish routes: each gets its status and a JSON error with
 * a stable code, the server stays up, and nothing it had accepted is lost.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { call, errorBody, head, oneMessage, poll, publish, publisher, rawExchange, portOf } from "./longpoll-client.js";

const MAX_BODY = 2048;
const MAX_MESSAGE = 512;

describe("long-poll and publish: bad requests", () => {
  let server: TidingsServer;
  let user1: string;
  let base: string;
  const accepted: string[] = [];

  before(async () => {
    server = await startServer({
      accessRules: [{ channels: "room-*" }],
      databases: { test: {}, off: { bus: false } },
      maxBodyBytes: MAX_BODY,
      maxMessageBytes: MAX_MESSAGE,
      maxBatch: 50,
      pollTimeoutMs: 30_000,
    });
    user1 = await token("1");
    base = await publish(server, "room-keep", { type: "keep" });
  });
  after(() => server.close());

  /** A valid publish and poll still work, and every message accepted so far is still there, in order. */
  async function stillServing(): Promise<void> {
    accepted.push(await publish(server, "room-keep", { type: "keep", n: accepted.length }));
    const r = await poll(server, user1, { last_message: base, channels: ["room-keep"], max_messages: 50 });
    assert.equal(r.status, 200);
    const got = (r.json as { messages: Array<{ message: { message_id: string } }> }).messages.map((m) => m.message.message_id);
    assert.deepEqual(got, accepted);
  }

  async function expectError(r: { status: number; text: string }, status: number, body: string): Promise<void> {
    assert.equal(r.status, status, r.text);
    assert.equal(r.text, body);
    await stillServing();
  }

  describe("body", () => {
    it("400 for a body that is not JSON (raw bytes)", async () => {
      for (const body of ['{"channels": [', "last_message=&channels=a", "{'channels': []}", "\u00ff\u00fe"]) {
        const bytes = Buffer.from(body, "latin1");
        const r = await rawExchange(portOf(server), [
          head("/test/bus", { "Content-Type": "application/json", Authorization: `Bearer ${user1}`, "Content-Length": bytes.length }),
          bytes,
        ]);
        assert.equal(r.status, 400, body);
        assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
        const parsed = JSON.parse(r.body) as { error: { code: string; message: string } };
        assert.equal(parsed.error.code, "TIDINGS_ERR_REQUEST_JSON");
        assert.match(parsed.error.message, /^The body is not valid JSON: /);
        await stillServing();
      }
    });

    it("400 for an empty body", async () => {
      await expectError(await poll(server, user1, ""), 400, errorBody("TIDINGS_ERR_REQUEST_JSON", "The body is empty; a JSON object is expected."));
    });

    it("400 for a body that is not an object", async () => {
      for (const body of ["[]", '"x"', "5", "null", "true"]) {
        await expectError(
          await poll(server, user1, body),
          400,
          errorBody("TIDINGS_ERR_REQUEST_INVALID", 'The body must be a JSON object {"last_message", "channels"}.'),
        );
      }
    });

    it("413 for a body over the limit announced by Content-Length, without waiting for it", async () => {
      // Only the head is sent: the answer comes anyway, and the connection is not kept.
      const r = await rawExchange(portOf(server), [
        head("/test/bus", { "Content-Type": "application/json", Authorization: `Bearer ${user1}`, "Content-Length": MAX_BODY + 1 }),
      ]);
      assert.equal(r.status, 413);
      assert.equal(r.body, errorBody("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${MAX_BODY} bytes.`, { maxBytes: MAX_BODY }));
      assert.equal(r.headers.connection, "close");
      await stillServing();
    });

    it("413 for a body over the limit announced by Content-Length and sent whole", async () => {
      const r = await rawExchange(portOf(server), [
        head("/test/bus", { "Content-Type": "application/json", Authorization: `Bearer ${user1}`, "Content-Length": MAX_BODY + 1 }),
        Buffer.alloc(MAX_BODY + 1, 0x20),
      ]);
      assert.equal(r.status, 413);
      assert.equal(r.body, errorBody("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${MAX_BODY} bytes.`, { maxBytes: MAX_BODY }));
      await stillServing();
    });

    it("413 for a chunked body that grows over the limit (no Content-Length)", async () => {
      const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
      const piece = " ".repeat(512);
      const r = await rawExchange(portOf(server), [
        head("/test/bus", { "Content-Type": "application/json", Authorization: `Bearer ${user1}`, "Transfer-Encoding": "chunked" }),
        chunk('{"channels":[]'),
        ...Array.from({ length: 8 }, () => chunk(piece)),
        "0\r\n\r\n",
      ]);
      assert.equal(r.status, 413);
      assert.equal(r.body, errorBody("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${MAX_BODY} bytes.`, { maxBytes: MAX_BODY }));
      await stillServing();
    });

    it("accepts a body of exactly the limit", async () => {
      const cursor = await publish(server, "room-x", { type: "t" });
      const id = await publish(server, "room-x", { type: "t" });
      const json = JSON.stringify({ last_message: cursor, channels: ["room-x"] });
      const body = json + " ".repeat(MAX_BODY - json.length);
      const r = await rawExchange(portOf(server), [
        head("/test/bus", { "Content-Type": "application/json", Authorization: `Bearer ${user1}`, "Content-Length": MAX_BODY }),
        body,
      ]);
      assert.equal(r.status, 200);
      assert.equal(r.body, oneMessage("room-x", id, { type: "t" }));
    });
  });

  describe("fields", () => {
    it("400 when channels is missing or not a list of strings", async () => {
      for (const body of [{ last_message: null }, { channels: "room-1" }, { channels: ["room-1", 5] }, { channels: { 0: "room-1" } }, { channels: [null] }, { channels: null }]) {
        await expectError(await poll(server, user1, body), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", "channels must be a list of strings."));
      }
    });

    it("400 when last_message is not a string or null", async () => {
      for (const last_message of [5, {}, true, ["x"]]) {
        await expectError(
          await poll(server, user1, { last_message, channels: [] }),
          400,
          errorBody("TIDINGS_ERR_CURSOR_INVALID", "last_message must be a string or null."),
        );
      }
    });

    it("400 when last_message is longer than any message id could be", async () => {
      await expectError(
        await poll(server, user1, { last_message: "x".repeat(257), channels: [] }),
        400,
        errorBody("TIDINGS_ERR_CURSOR_INVALID", "last_message has more than 256 characters: it cannot be a message id."),
      );
      await publish(server, "room-long-cursor", { type: "t" });
      const fine = await poll(server, user1, { last_message: "x".repeat(256), channels: ["room-long-cursor"] });
      assert.equal(fine.status, 200);
      assert.equal(JSON.parse(fine.text).gap, true, "256 characters is an unknown cursor, answered with the gap signal");
    });

    it("400 for more than 100 channels; 100 are fine", async () => {
      const hundred = Array.from({ length: 100 }, (_, i) => `room-${i}`);
      const cursor = await publish(server, "room-99", { type: "t" });
      const id = await publish(server, "room-99", { type: "t" });
      const ok = await poll(server, user1, { last_message: cursor, channels: hundred });
      assert.equal(ok.text, oneMessage("room-99", id, { type: "t" }));
      await expectError(
        await poll(server, user1, { channels: [...hundred, "room-100"] }),
        400,
        errorBody("TIDINGS_ERR_CHANNEL_TOO_MANY", "At most 100 channels per subscription.", { max: 100 }),
      );
    });

    it("400 for a channel name over 255 characters or empty; 255 are fine", async () => {
      const longest = `room-${"x".repeat(250)}`;
      const cursor = await publish(server, longest, { type: "t" });
      const id = await publish(server, longest, { type: "t" });
      assert.equal((await poll(server, user1, { last_message: cursor, channels: [longest] })).text, oneMessage(longest, id, { type: "t" }));
      const tooLong = `${longest}y`;
      await expectError(
        await poll(server, user1, { channels: [tooLong] }),
        400,
        errorBody("TIDINGS_ERR_CHANNEL_INVALID", "A channel must have 1 to 255 characters.", { channel: tooLong.slice(0, 64) }),
      );
      await expectError(
        await poll(server, user1, { channels: [""] }),
        400,
        errorBody("TIDINGS_ERR_CHANNEL_INVALID", "A channel must have 1 to 255 characters.", { channel: "" }),
      );
    });

    it("403 for a channel the caller may not read, naming it", async () => {
      await expectError(
        await poll(server, user1, { channels: ["room-1", "secret"] }),
        403,
        errorBody("TIDINGS_ERR_CHANNEL_FORBIDDEN", 'Not allowed to read channel "secret".', { channel: "secret" }),
      );
      await expectError(
        await poll(server, user1, { channels: ["user:2"] }),
        403,
        errorBody("TIDINGS_ERR_CHANNEL_FORBIDDEN", 'Not allowed to read channel "user:2".', { channel: "user:2" }),
      );
    });
  });

  describe("routes and databases", () => {
    it("404 for an unknown database, even one that is not a valid name", async () => {
      await expectError(await poll(server, user1, { channels: [] }, "nope"), 404, errorBody("TIDINGS_ERR_DB_UNKNOWN", 'Unknown database "nope".'));
      await expectError(
        await call(`${server.url}/a%2Fb/bus`, { token: user1, body: { channels: [] } }),
        404,
        errorBody("TIDINGS_ERR_DB_UNKNOWN", 'Unknown database "a/b".'),
      );
    });

    it("404 for an unknown route, 405 for a wrong method", async () => {
      await expectError(await call(`${server.url}/test/nothing`, { token: user1, body: {} }), 404, errorBody("TIDINGS_ERR_NOT_FOUND", "No such route."));
      await expectError(await call(`${server.url}/test/bus`, { method: "GET", token: user1 }), 405, errorBody("TIDINGS_ERR_REQUEST_METHOD", "Method not allowed."));
    });

    it("501 on a database with the bus disabled, before credentials are even looked at", async () => {
      const body = errorBody("TIDINGS_ERR_DB_BUS_DISABLED", "The bus is disabled for database off.");
      await expectError(await poll(server, user1, { channels: [] }, "off"), 501, body);
      await expectError(await call(`${server.url}/off/bus`, { body: { channels: [] } }), 501, body);
      await expectError(await call(`${server.url}/off/publish`, { token: await publisher(), body: { channel: "room-1", message: { type: "t" } } }), 501, body);
    });
  });

  describe("publishing", () => {
    async function publishRaw(body: unknown): Promise<{ status: number; text: string }> {
      return call(`${server.url}/test/publish`, { token: await publisher(), body });
    }

    it("413 for a message over the message limit, and nothing of it is stored", async () => {
      const big = { type: "t", data: "x".repeat(MAX_MESSAGE) };
      const body = errorBody("TIDINGS_ERR_MESSAGE_TOO_LARGE", `A message may have at most ${MAX_MESSAGE} bytes of JSON.`, { maxBytes: MAX_MESSAGE });
      await expectError(await publishRaw({ channel: "room-big", message: big }), 413, body);
      // In a batch: the whole batch is refused, the small one included.
      await expectError(await publishRaw({ messages: [{ channel: "room-big", message: { type: "small" } }, { channel: "room-big", message: big }] }), 413, body);
      const nothing = await server.bus.store.read("test", { after: null, channels: ["room-big"], limit: 10 });
      assert.deepEqual(nothing.messages, []);
    });

    it("413 for a publish body over the body limit", async () => {
      await expectError(
        await publishRaw({ channel: "room-big", message: { type: "t", data: "x".repeat(MAX_BODY) } }),
        413,
        errorBody("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${MAX_BODY} bytes.`, { maxBytes: MAX_BODY }),
      );
    });

    it("400 for invalid messages, channels and batches", async () => {
      await expectError(await publishRaw({ channel: "room-1", message: [1] }), 400, errorBody("TIDINGS_ERR_MESSAGE_INVALID", "A message must be a JSON object."));
      await expectError(
        await publishRaw({ channel: "room-1", message: { data: 1 } }),
        400,
        errorBody("TIDINGS_ERR_MESSAGE_INVALID", 'A message needs a "type": a string of 1 to 100 characters.'),
      );
      const SHAPE = '{"channel": "...", "message": {"type": "...", ...}} or {"messages": [{"channel", "message"}, ..]}';
      await expectError(await publishRaw({ message: { type: "t" } }), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", `The body has no "channel" field: send ${SHAPE}.`));
      await expectError(await publishRaw({ channel: "room-1", type: "t" }), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", `The body has no "message" field: send ${SHAPE}.`));
      await expectError(await publishRaw({ channel: 5, message: { type: "t" } }), 400, errorBody("TIDINGS_ERR_CHANNEL_INVALID", "channel must be a string, got 5."));
      await expectError(
        await publishRaw({ messages: [{ channel: "r", message: { type: "t" } }, { channel: ["r"], message: { type: "t" } }] }),
        400,
        errorBody("TIDINGS_ERR_CHANNEL_INVALID", 'messages[1].channel must be a string, got ["r"].'),
      );
      await expectError(await publishRaw({ messages: [] }), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", "messages must be a non-empty list of {channel, message}."));
      await expectError(await publishRaw({ messages: [5] }), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", `messages[0] must be a JSON object: ${SHAPE}.`));
      await expectError(
        await publishRaw({ messages: [{ channel: "r", message: { type: "t" } }, { channel: "r" }] }),
        400,
        errorBody("TIDINGS_ERR_REQUEST_INVALID", `messages[1] has no "message" field: send ${SHAPE}.`),
      );
      const many = Array.from({ length: 51 }, () => ({ channel: "r", message: { type: "t" } }));
      await expectError(await publishRaw({ messages: many }), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", "At most 50 messages per publish."));
      await expectError(await publishRaw([1]), 400, errorBody("TIDINGS_ERR_REQUEST_INVALID", `The body must be a JSON object: ${SHAPE}.`));
    });
  });
});
