import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { get as httpGet } from "node:http";
import { EventSource } from "eventsource";
import type { TidingsServer } from "../../src/server.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { startServer, token } from "../helpers/server.js";

interface Received {
  type: string;
  id: string;
  data: any;
}

/** An EventSource that records every event, and lets a test wait for the next ones. */
class Recorder {
  readonly events: Received[] = [];
  private readonly more = new EventEmitter();
  readonly es: EventSource;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.es = new EventSource(url, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
    });
    const record = (type: string) => (e: MessageEvent) => {
      this.events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
      this.more.emit("event");
    };
    this.es.addEventListener("message", record("message"));
    this.es.addEventListener("gap", record("gap"));
  }

  async until(n: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.events.length} of ${n} events`);
      await Promise.race([once(this.more, "event"), new Promise((r) => setTimeout(r, left).unref())]);
    }
    return this.events.slice(0, n);
  }

  close(): void {
    this.es.close();
  }
}

/** The server side of each SSE request, so a test can end a stream as a network drop would. */
function watchStreams(server: TidingsServer): Array<{ req: IncomingMessage; res: ServerResponse }> {
  const seen: Array<{ req: IncomingMessage; res: ServerResponse }> = [];
  server.http.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.includes("/events")) seen.push({ req, res });
  });
  return seen;
}

/** Reads a raw event stream until `done(text)` holds; returns the text read. */
async function readUntil(url: string, headers: Record<string, string>, done: (text: string) => boolean): Promise<{ text: string; res: Response }> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  let text = "";
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  while (!done(text)) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += decoder.decode(value, { stream: true });
  }
  ac.abort();
  return { text, res };
}

const message = (channel: string, id: string, body: Record<string, unknown>) => ({
  type: "message",
  id,
  data: { channel, message: { message_id: id, ...body } },
});

describe("SSE with the eventsource package", () => {
  let server: TidingsServer;
  let base: string;
  let t7: string;

  before(async () => {
    server = await startServer({
      databases: { test: {}, off: { bus: false } },
      accessRules: [{ channels: "room-*" }, { channels: "chat:*" }],
      sseRetryMs: 20,
      sseKeepAliveMs: 20,
    });
    base = `${server.url}/test/events`;
    t7 = await token("7");
  });
  after(async () => {
    await server.close();
  });

  test("each message is an event whose id is its message_id; Authorization header", async () => {
    const r = new Recorder(`${base}?channels=room-1,room-2`, { authorization: `Bearer ${t7}` });
    await once(r.es, "open");
    const a = await server.bus.publish("test", "room-1", { type: "a" });
    await server.bus.publish("test", "room-3", { type: "not-mine" });
    const b = await server.bus.publish("test", "room-2", { type: "b", n: 1 });
    assert.deepEqual(await r.until(2), [message("room-1", a, { type: "a" }), message("room-2", b, { type: "b", n: 1 })]);
    r.close();
  });

  test("?token= for EventSource, repeated channel= for names with commas", async () => {
    const r = new Recorder(`${base}?token=${t7}&channel=${encodeURIComponent("chat:sale.sale,12")}&channels=room-5`);
    await once(r.es, "open");
    const a = await server.bus.publish("test", "chat:sale.sale,12", { type: "chat", text: "hi" });
    const b = await server.bus.publish("test", "room-5", { type: "x" });
    assert.deepEqual(await r.until(2), [message("chat:sale.sale,12", a, { type: "chat", text: "hi" }), message("room-5", b, { type: "x" })]);
    r.close();
  });

  test("the session cookie authenticates", async () => {
    const r = new Recorder(`${base}?channels=user:7`, { cookie: `tidings_session=${t7}` });
    await once(r.es, "open");
    const a = await server.bus.publish("test", "user:7", { type: "n" });
    assert.deepEqual(await r.until(1), [message("user:7", a, { type: "n" })]);
    r.close();
  });

  test("a dropped stream reconnects with Last-Event-ID and resumes: nothing lost, nothing twice", async () => {
    const streams = watchStreams(server);
    const r = new Recorder(`${base}?channels=room-r&token=${t7}`);
    await once(r.es, "open");
    const published: string[] = [];
    for (let i = 0; i < 3; i++) published.push(await server.bus.publish("test", "room-r", { type: "t", i }));
    await r.until(3);
    streams[0]!.res.destroy();
    for (let i = 3; i < 6; i++) published.push(await server.bus.publish("test", "room-r", { type: "t", i }));
    await r.until(6);
    assert.equal(streams[1]!.req.headers["last-event-id"], published[2]);
    assert.deepEqual(
      r.events.map((e) => e.id),
      published,
    );
    r.close();
  });

  test("?last_message= resumes a first connection; without a cursor, the no-cursor window", async () => {
    const first = await server.bus.publish("test", "room-l", { type: "t", i: 0 });
    const second = await server.bus.publish("test", "room-l", { type: "t", i: 1 });
    const resumed = new Recorder(`${base}?channels=room-l&token=${t7}&last_message=${first}`);
    assert.deepEqual(
      (await resumed.until(1)).map((e) => e.id),
      [second],
    );
    resumed.close();
    const fresh = new Recorder(`${base}?channels=room-l&token=${t7}`);
    assert.deepEqual(
      (await fresh.until(2)).map((e) => e.id),
      [first, second],
    );
    fresh.close();
  });

  test("the exact wire: retry, events, keep-alive comments", async () => {
    const cursor = await server.bus.publish("test", "room-elsewhere", { type: "before" });
    const id = await server.bus.publish("test", "room-wire", { type: "w", text: "a\nb" });
    const { text, res } = await readUntil(`${base}?channels=room-wire&last_message=${cursor}`, { authorization: `Bearer ${t7}` }, (s) =>
      s.includes(": keep-alive\n\n"),
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(res.headers.get("cache-control"), "no-store");
    const event = `id: ${id}\ndata: {"channel":"room-wire","message":{"message_id":"${id}","type":"w","text":"a\\nb"}}\n\n`;
    assert.ok(text.startsWith(`retry: 20\n\n${event}`), text);
    assert.match(text.slice(`retry: 20\n\n${event}`.length), /^(: keep-alive\n\n)+$/);
  });

  test("errors before the stream starts are JSON with a stable code", async () => {
    const status = async (url: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url, { headers });
      return { status: res.status, body: await res.json() };
    };
    assert.deepEqual(await status(`${base}?channels=room-1`), { status: 401, body: { error: { code: "TIDINGS_ERR_AUTH_REQUIRED", message: "Authentication required." } } });
    assert.deepEqual(await status(`${base}?channels=room-1&token=bad`), { status: 401, body: { error: { code: "TIDINGS_ERR_AUTH_INVALID", message: "Invalid token." } } });
    assert.deepEqual(await status(`${base}?channels=room-1,user:8&token=${t7}`), {
      status: 403,
      body: { error: { code: "TIDINGS_ERR_CHANNEL_FORBIDDEN", message: 'Not allowed to read channel "user:8".', channel: "user:8" } },
    });
    assert.deepEqual(await status(`${base}?token=${t7}`), {
      status: 400,
      body: { error: { code: "TIDINGS_ERR_REQUEST_INVALID", message: "Name at least one channel: ?channels=a,b or ?channel=a&channel=b." } },
    });
    assert.equal((await status(`${server.url}/nope/events?channels=a&token=${t7}`)).status, 404);
    assert.deepEqual(await status(`${server.url}/off/events?channels=a&token=${t7}`), {
      status: 501,
      body: { error: { code: "TIDINGS_ERR_DB_BUS_DISABLED", message: "The bus is disabled for database off." } },
    });
  });
});

describe("SSE: gap, limits, ends", () => {
  test("a cursor older than retention gets a gap event, then the oldest retained messages", async () => {
    const server = await startServer({
      storeInstance: new MemoryStore(),
      tailSize: 3,
      databases: { test: { retention: { maxCount: 3 } } },
      accessRules: [{ channels: "room-*" }],
    });
    try {
      const published: string[] = [];
      for (let i = 0; i < 10; i++) published.push(await server.bus.publish("test", "room-1", { type: "t", i }));
      await server.bus.runRetention();
      const r = new Recorder(`${server.url}/test/events?channels=room-1&token=${await token("7")}&last_message=${published[0]}`);
      const events = await r.until(4);
      assert.deepEqual(events[0], { type: "gap", id: "", data: { channels: ["room-1"] } });
      assert.deepEqual(
        events.slice(1).map((e) => e.id),
        published.slice(7),
      );
      r.close();
    } finally {
      await server.close();
    }
  });

  test("a client that stops reading is dropped at the send-buffer cap; others go on", async () => {
    const server = await startServer({ accessRules: [{ channels: "room-*" }], ws: { maxBufferedBytes: 128 * 1024 } });
    try {
      const streams = watchStreams(server);
      const t = await token("7");
      const slowRes = await new Promise<IncomingMessage>((resolve) => httpGet(`${server.url}/test/events?channels=room-1&token=${t}`, resolve));
      slowRes.pause();
      const good = new Recorder(`${server.url}/test/events?channels=room-1&token=${t}`);
      await once(good.es, "open");
      const serverSide = streams[0]!.res;
      let dropped = false;
      serverSide.once("close", () => (dropped = true));
      const pad = "x".repeat(8000);
      let n = 0;
      while (!dropped) {
        await server.bus.publish("test", "room-1", { type: "t", n: n++, pad });
        await new Promise((r) => setImmediate(r));
        assert.ok(n < 50_000, "the slow client was never dropped");
      }
      assert.equal((await good.until(n)).length, n);
      slowRes.destroy();
      good.close();
    } finally {
      await server.close();
    }
  });

  test("draining ends every stream", async () => {
    const server = await startServer({ accessRules: [{ channels: "room-*" }] });
    const t = await token("7");
    const res = await fetch(`${server.url}/test/events?channels=room-1&token=${t}`);
    const reader = res.body!.getReader();
    await reader.read(); // retry line
    const closing = server.close();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    await closing;
  });

  test("expired credentials end the stream", async () => {
    const server = await startServer({ accessRules: [{ channels: "room-*" }] });
    try {
      // Two seconds: `exp` is whole seconds, so a one-second token may be dead before the request.
      const res = await fetch(`${server.url}/test/events?channels=room-1&token=${await token("7", { ttlSeconds: 2 })}`);
      assert.equal(res.status, 200, "the stream opens while the token is valid");
      const reader = res.body!.getReader();
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
      }
    } finally {
      await server.close();
    }
  });
});
