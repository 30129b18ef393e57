/**
 * The description of the WebSocket and SSE wires (issue 10): `GET /asyncapi.json` serves an
 * AsyncAPI 3.0 document whose references all resolve and which names every request type the
 * server answers itself; and the schemas it is generated from hold for real frames and
 * events captured from a live server (TypeBox's `Value.Check`), so the document cannot
 * drift from the wire unnoticed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Value } from "@sinclair/typebox/value";
import type { TSchema } from "@sinclair/typebox";
import type { TidingsServer } from "../../src/server.js";
import { BUILTIN_TYPES } from "../../src/protocol/rohrpost.js";
import * as F from "../../src/protocol/rohrpost-frames.js";
import { GAP_EVENT_DATA, MESSAGE_EVENT_DATA } from "../../src/protocol/sse-events.js";
import { CLOSE } from "../../src/transports/websocket/close-codes.js";
import { request, startServer, token } from "../helpers/server.js";
import { refs, resolve, type Json } from "./json-refs.js";
import { FrameClient, wsUrl, type Frame } from "./websocket-helpers.js";


/** Value.Check, with what is wrong in the message when it fails. */
function assertFrame(schema: TSchema, frame: unknown, what: string): void {
  const errors = [...Value.Errors(schema, frame)].slice(0, 3).map((e) => `${e.path} ${e.message}`);
  assert.ok(Value.Check(schema, frame), `${what} ${JSON.stringify(frame)} does not match its schema: ${errors.join("; ")}`);
}

describe("GET /asyncapi.json", () => {
  let server: TidingsServer;
  let doc: Json;
  before(async () => {
    server = await startServer();
    const res = await fetch(`${server.url}/asyncapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    doc = JSON.parse(await res.text()) as Json;
  });
  after(() => server.close());

  it("is a public route of the table, and the OpenAPI document lists it", async () => {
    assert.ok(server.router.routes.some((r) => r.method === "GET" && r.path === "/asyncapi.json" && r.role === "public"));
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as Json;
    assert.equal(openapi.paths["/asyncapi.json"].get.summary, "The WebSocket and SSE wires, as an AsyncAPI 3.0 document");
  });

  it("is AsyncAPI 3.0.0 with both channels, and every $ref resolves", () => {
    assert.equal(doc.asyncapi, "3.0.0");
    assert.equal(typeof doc.info.title, "string");
    assert.equal(typeof doc.info.version, "string");
    assert.equal(doc.channels.websocket.address, "/{db}/ws");
    assert.equal(doc.channels.events.address, "/{db}/events");
    const all = refs(doc);
    assert.ok(all.length > 50, `${all.length} references`);
    assert.deepEqual(all.filter(([, target]) => target === undefined).map(([ref]) => ref), []);
    for (const [name, op] of Object.entries(doc.operations as Json)) {
      assert.ok(["send", "receive"].includes(op.action), name);
      // AsyncAPI 3: an operation's messages are those of its channel.
      for (const m of [...op.messages, ...(op.reply?.messages ?? [])]) assert.ok((m.$ref as string).startsWith(`${op.channel.$ref}/messages/`), `${name}: ${m.$ref}`);
    }
  });

  it("names every request type the server answers itself, with its answer and the error frame", () => {
    const registered = [...BUILTIN_TYPES, ...server.bus.handlers.names()];
    assert.ok(registered.includes("command-result"), registered.join());
    const received = new Map<string, Json>();
    for (const op of Object.values(doc.operations as Json)) {
      if (op.action !== "receive") continue;
      const payload = resolve(doc, resolve(doc, op.messages[0].$ref)!.payload.$ref)!;
      if (payload.properties.type.const !== undefined) received.set(payload.properties.type.const as string, op);
    }
    assert.deepEqual(registered.filter((t) => !received.has(t)), []);
    for (const t of registered) {
      const replies = (received.get(t)!.reply.messages as Json[]).map((m) => m.$ref as string);
      assert.ok(replies.includes("#/channels/websocket/messages/error"), `${t} answers with an error frame too`);
      assert.equal(replies.length, 2, t);
    }
    assert.equal(doc.components.messages.pingReply.title, "pong");
  });

  it("lists the close codes and the SSE events", () => {
    assert.deepEqual(
      doc.channels.websocket["x-tidings-close-codes"].map((c: Json) => c.code),
      Object.values(CLOSE).map((c) => c.code),
    );
    assert.match(doc.channels.websocket.description, /\| 4029 \| `too many frames` \|/);
    assert.deepEqual(Object.keys(doc.channels.events.messages), ["messageEvent", "gapEvent"]);
    assert.equal(doc.components.messages.gapEvent.title, "gap");
  });
});

describe("the frame schemas, against frames captured from a live server", () => {
  let server: TidingsServer;
  const clients: FrameClient[] = [];
  before(async () => {
    server = await startServer();
    server.bus.changes.model("invoice", { serialize: (o) => ({ id: o.id, state: o.state }) });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await server.close();
  });
  const open = async (query: Record<string, string> = {}) => {
    const c = await FrameClient.open(wsUrl(server, query));
    clients.push(c);
    return c;
  };

  it("ping, auth, subscribe, publish, pushes of a message and of a model change, unsubscribe, error frames", async () => {
    const c = await open();
    assertFrame(F.PONG, await c.request({ id: 1, type: "ping" }), "a pong");
    assertFrame(F.PONG, await c.request({ id: "p", type: "ping", data: [1, { a: 2 }] }), "a pong with data");

    const auth = await c.request({ id: 2, type: "auth", data: { token: await token("app", { role: "publisher", channels: ["*"] }) } });
    assert.equal(auth.error, undefined, JSON.stringify(auth));
    assertFrame(F.AUTH_REPLY, auth, "an auth answer");

    const byList = await c.request({ id: 3, type: "subscribe", data: { channels: ["news"], last_message: null } });
    assertFrame(F.SUBSCRIBE_REPLY, byList, "a subscribe answer (channels)");
    const byGroup = await c.request({ id: 4, type: "subscribe", data: { type: "invoice", id: 42 } });
    assert.deepEqual(byGroup.data, { group: "invoice-42" });
    assertFrame(F.SUBSCRIBE_REPLY, byGroup, "a subscribe answer (group)");

    const published = await c.request({ id: 5, type: "publish", data: { channel: "news", message: { type: "headline", text: "hi" } } });
    assertFrame(F.PUBLISH_REPLY, published, "a publish answer");
    const [push] = await c.pushes(1);
    assert.equal(push!.data.message.text, "hi");
    assertFrame(F.MESSAGE_PUSH, push, "a push of a published message");
    assert.ok(!Value.Check(F.CHANGE_PUSH, push), "a plain message push is not a change push");
    assert.ok(!Value.Check(F.GAP_PUSH, push), "a message push is not a gap push");

    await server.bus.changes.updated("test", "invoice", { id: 42, state: "paid" }, { updatedFields: ["state"] });
    const [change] = await c.pushes(1);
    assert.equal(change!.data.type, "update");
    assertFrame(F.CHANGE_PUSH, change, "a push of a model change");

    assertFrame(F.UNSUBSCRIBE_REPLY, await c.request({ id: 6, type: "unsubscribe", data: { channels: ["news"] } }), "an unsubscribe answer");

    const errors: Frame[] = [
      await c.request({ id: 7, type: "no-such" }),
      await c.request({ id: 8, type: "subscribe", data: { channels: "news" } }),
    ];
    c.send("{not json");
    errors.push(await c.waitFor((f) => f.error !== undefined && f.id === undefined, "the error frame of a frame that is not JSON"));
    for (const e of errors) assertFrame(F.ERROR_FRAME, e, "an error frame");
    assert.ok(!Value.Check(F.ERROR_FRAME, auth), "an answer is not an error frame");
    assertFrame(F.PONG, await c.request({ id: 9, type: "ping" }), "a pong after the errors");
  });

  it("the command frames: register, command, result", async () => {
    const bot = await open({ token: await token("bot", { addresses: ["bot:*"] }) });
    assertFrame(F.COMMAND_REGISTER_REPLY, await bot.request({ id: 1, type: "command-register", data: { address: "bot:1" } }), "a command-register answer");
    const sent = await request(`${server.url}/test/commands`, { token: await token("app", { role: "publisher" }), body: { address: "bot:1", method: "run", args: [1] } });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const command = await bot.waitFor((f) => f.type === "command", "the command frame");
    assertFrame(F.COMMAND, command, "a command frame");
    const result = { id: command.id as string, type: "command-result", data: { result: { ok: true } } };
    assertFrame(F.COMMAND_RESULT, result, "a command-result request");
    assertFrame(F.COMMAND_RESULT_REPLY, await bot.request(result), "a command-result answer");
  });

  it("the SSE events: a message and a gap", async () => {
    const tok = await token("reader", { channels: ["*"] });
    const events: Array<{ event: string; data: unknown }> = [];
    // node:http rather than fetch: a cancelled fetch body keeps its socket open, holding up the server's close.
    const url = `${server.url}/test/events?channels=sse-news&last_message=${encodeURIComponent("zzzzzzzzz:0000000000000001")}&token=${tok}`;
    let req: http.ClientRequest | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; events so far: ${JSON.stringify(events)}`)), 10_000);
        req = http.get(url, (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          let text = "";
          res.setEncoding("utf8").on("data", (chunk: string) => {
            text += chunk;
            for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
              const block = text.slice(0, end).split("\n");
              text = text.slice(end + 2);
              const data = block.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
              if (data === "") continue;
              const event = block.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
              events.push({ event, data: JSON.parse(data) });
              if (event === "gap") void server.bus.publish("test", "sse-news", { type: "headline" }).catch(reject);
              if (event === "message") {
                clearTimeout(timer);
                resolve();
              }
            }
          });
        });
        req.once("error", reject);
      });
    } finally {
      req?.destroy();
    }
    const gap = events.find((e) => e.event === "gap")!;
    assertFrame(GAP_EVENT_DATA, gap.data, "a gap event");
    assertFrame(MESSAGE_EVENT_DATA, events.find((e) => e.event === "message")!.data, "a message event");
    assert.ok(!Value.Check(MESSAGE_EVENT_DATA, gap.data));
  });
});
