import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { HandlerRegistry } from "../../src/core/handlers.js";
import { TidingsError } from "../../src/errors.js";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { FrameClient, ids, wsUrl } from "./websocket-helpers.js";

describe("WebSocket: application handlers", () => {
  let server: TidingsServer;
  const closedConnections: string[] = [];
  let onClosed: ((id: string) => void) | null = null;

  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }] });
    const bus = server.bus;
    bus.handle("whoami", (ctx) => ({ user: ctx.identity?.user ?? null, db: ctx.db, connection: ctx.connectionId }));
    bus.handle("echo", (_ctx, req) => ({ id: req.id, type: req.type, data: req.data }));
    bus.handle("explicit", (ctx, req) => {
      if (req.data === "fail") ctx.error("Nope.", { reason: "asked to fail" });
      else ctx.reply({ ok: true });
      return "ignored: already answered";
    });
    bus.handle("silent", () => undefined);
    bus.handle("boom", () => {
      throw new Error("secret internals");
    });
    bus.handle("typed-error", () => {
      throw new TidingsError("TIDINGS_ERR_COMMAND_NOT_FOUND", "No command 42.", { details: { command: "42" } });
    });
    bus.handle("needs-auth", (ctx) => ctx.requireIdentity().user);
    bus.handle("send-to-me", (ctx, req) => {
      ctx.send({ type: "notice", data: { text: req.data } });
      ctx.send({ type: "notice", id: 99, data: { text: "second" } });
      return "sent";
    });
    bus.handle("publish-it", async (ctx, req) => ({ message_id: await ctx.publish("room-h", { type: "from-handler", text: req.data }) }));
    bus.handle("watch-close", (ctx) => {
      const id = ctx.connectionId;
      ctx.onClose(() => {
        closedConnections.push(id);
        onClosed?.(id);
      });
      return id;
    });
  });
  after(async () => {
    await server.close();
  });

  test("a handler's return value is the reply's data; it sees the caller's identity and connection", async () => {
    const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
    const d = await FrameClient.open(wsUrl(server, { token: await token("8") }));
    const a1 = await c.request({ id: 1, type: "whoami" });
    const a2 = await c.request({ id: 2, type: "whoami" });
    const b1 = await d.request({ id: 1, type: "whoami" });
    assert.equal(a1.data.user, "7");
    assert.equal(a1.data.db, "test");
    assert.equal(a1.data.connection, a2.data.connection);
    assert.notEqual(a1.data.connection, b1.data.connection);
    assert.equal(b1.data.user, "8");
    assert.deepEqual(await c.request({ id: "e", type: "echo", data: { x: [1, 2] } }), {
      id: "e",
      type: "echo",
      data: { id: "e", type: "echo", data: { x: [1, 2] } },
    });
    await c.close();
    await d.close();
  });

  test("reply, error and send helpers; a handler returning nothing gets a bare reply", async () => {
    const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
    assert.deepEqual(await c.request({ id: 1, type: "explicit" }), { id: 1, type: "explicit", data: { ok: true } });
    assert.deepEqual(await c.request({ id: 2, type: "explicit", data: "fail" }), {
      id: 2,
      type: "explicit",
      error: "Nope.",
      data: { reason: "asked to fail" },
    });
    assert.deepEqual(await c.request({ id: 3, type: "silent" }), { id: 3, type: "silent" });
    c.send({ id: 4, type: "send-to-me", data: "first" });
    assert.deepEqual(await c.next(), { type: "notice", data: { text: "first" } });
    assert.deepEqual(await c.next(), { id: 99, type: "notice", data: { text: "second" } });
    assert.deepEqual(await c.next(), { id: 4, type: "send-to-me", data: "sent" });
    await c.close();
  });

  test("a handler that throws gets an error reply; the connection and the server stay healthy", async () => {
    const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
    const other = await FrameClient.open(wsUrl(server, { token: await token("8") }));
    await other.request({ id: 0, type: "subscribe", data: { channels: ["room-1"] } });
    assert.deepEqual(await c.request({ id: 1, type: "boom" }), {
      id: 1,
      type: "boom",
      error: "The handler of 'boom' failed.",
      data: { code: "TIDINGS_ERR_HANDLER_FAILED" },
    });
    assert.deepEqual(await c.request({ id: 2, type: "typed-error" }), {
      id: 2,
      type: "typed-error",
      error: "No command 42.",
      data: { code: "TIDINGS_ERR_COMMAND_NOT_FOUND", command: "42" },
    });
    assert.deepEqual(await c.request({ id: 3, type: "ping" }), { id: 3, type: "pong" });
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    const id = await server.bus.publish("test", "room-1", { type: "t" });
    assert.deepEqual(ids(await other.pushes(1)), [id]);
    await c.close();
    await other.close();
  });

  test("requireIdentity refuses an unauthenticated caller; an auth sent just before applies", async () => {
    const c = await FrameClient.open(wsUrl(server));
    assert.deepEqual((await c.request({ id: 1, type: "needs-auth" })).data, { code: "TIDINGS_ERR_AUTH_REQUIRED" });
    // Sent back to back: the handler starts after the auth before it is done.
    c.send({ id: 2, type: "auth", data: { token: await token("7") } });
    c.send({ id: 3, type: "needs-auth" });
    assert.deepEqual(await c.waitFor((f) => f.id === 3), { id: 3, type: "needs-auth", data: "7" });
    await c.close();
  });

  test("ctx.publish reaches subscribers; it needs the publisher role", async () => {
    const sub = await FrameClient.open(wsUrl(server, { token: await token("8") }));
    await sub.request({ id: 0, type: "subscribe", data: { channels: ["room-h"] } });
    const pub = await FrameClient.open(wsUrl(server, { token: await token("app", { role: "publisher" }) }));
    const reply = await pub.request({ id: 1, type: "publish-it", data: "hello" });
    const [push] = await sub.pushes(1);
    assert.deepEqual(push, {
      type: "subscription-update",
      id: reply.data.message_id,
      data: { group: "room-h", message: { message_id: reply.data.message_id, type: "from-handler", text: "hello" } },
    });
    const notPub = await FrameClient.open(wsUrl(server, { token: await token("9") }));
    assert.deepEqual((await notPub.request({ id: 2, type: "publish-it", data: "x" })).data, { code: "TIDINGS_ERR_ROLE_FORBIDDEN" });
    await Promise.all([sub.close(), pub.close(), notPub.close()]);
  });

  test("ctx.onClose runs when the connection closes", async () => {
    const c = await FrameClient.open(wsUrl(server, { token: await token("7") }));
    const { data: id } = await c.request({ id: 1, type: "watch-close" });
    const closed = new Promise<string>((r) => (onClosed = r));
    await c.close();
    assert.equal(await closed, id);
    assert.deepEqual(closedConnections, [id]);
  });

  test("a name registered twice, or a built-in name, is refused", () => {
    assert.throws(() => server.bus.handle("echo", () => 1), { code: "TIDINGS_ERR_CONFIG", message: 'A handler named "echo" is already registered.' });
    for (const name of ["ping", "auth", "subscribe", "unsubscribe", "publish"]) {
      assert.throws(() => server.bus.handle(name, () => 1), { code: "TIDINGS_ERR_CONFIG", message: `"${name}" is a built-in request type; choose another name.` });
    }
    const registry = new HandlerRegistry();
    registry.register("subscribe", () => 1);
    assert.throws(() => registry.reserve(["ping", "subscribe"]), { code: "TIDINGS_ERR_CONFIG" });
  });
});
