import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import WebSocket from "ws";
import { createServer, type TidingsServer } from "../../src/server.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { TEST_SECRET, token } from "../helpers/server.js";

interface Group {
  type: string;
  id: string | number;
  last_message?: string | null;
}

/**
 * A client written from rohrpost-js's wire behaviour: numbered requests answered by id,
 * `auth_jwt` on every request, subscriptions by group object resolved by `data.group`,
 * pushes emitted under `data.group`, an error reply rejects with `error`, an application
 * ping every `pingInterval` (a missing pong closes the socket), and on an unexpected close
 * a reconnect that subscribes again. Unlike rohrpost-js it resubscribes with the cursor of
 * the last message it got, which is what tidings adds.
 */
class RohrpostLikeClient extends EventEmitter {
  socket!: WebSocket;
  private nextId = 1;
  private open = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>();
  private groups = new Map<string, Group>();
  private lastMessage = new Map<string, string>();
  private normalClose = false;
  pongs = 0;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly config: { token: string; pingInterval: number; reconnectDelay: number },
  ) {
    super();
    this.connect();
  }

  private connect(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.emit("open");
      this.ping(socket);
      for (const [group, g] of this.groups) void this.subscribe({ ...g, last_message: this.lastMessage.get(group) ?? null }).catch(() => {});
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(String(event.data))));
    socket.addEventListener("close", (event) => {
      clearTimeout(this.pingTimer);
      this.emit("closed", event.code);
      if (!this.normalClose) setTimeout(() => this.connect(), this.config.reconnectDelay).unref();
    });
    socket.addEventListener("error", () => {});
  }

  private ping(socket: WebSocket): void {
    const sentAt = Date.now();
    let answered = false;
    const onPong = () => (answered = true);
    this.once("pong", onPong);
    socket.send(JSON.stringify({ type: "ping", id: sentAt }));
    this.pingTimer = setTimeout(() => {
      this.off("pong", onPong);
      if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
      if (!answered) socket.close();
      else this.ping(socket);
    }, this.config.pingInterval);
    this.pingTimer.unref();
  }

  private request(type: string, data: unknown): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.open.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ type, id, auth_jwt: this.config.token, data }));
    });
  }

  async subscribe(group: Group): Promise<any> {
    const data = await this.request("subscribe", group);
    this.groups.set(data.group, { type: group.type, id: group.id });
    return data;
  }

  async unsubscribe(group: Group): Promise<any> {
    const data = await this.request("unsubscribe", group);
    this.groups.delete(data.group);
    return data;
  }

  call(name: string, data: unknown): Promise<any> {
    return this.request(name, data);
  }

  private receive(message: any): void {
    if (message.error) {
      const pending = this.open.get(message.id);
      this.open.delete(message.id);
      pending?.reject(message.error);
      return;
    }
    if (message.type === "pong") {
      this.pongs++;
      this.emit("pong");
      return;
    }
    if (message.type === "subscription-update") {
      const group: string = message.data.group;
      if (message.data.message?.message_id) this.lastMessage.set(group, message.data.message.message_id);
      this.emit(group, null, message.data);
      return;
    }
    const pending = this.open.get(message.id);
    this.open.delete(message.id);
    pending?.resolve(message.data);
  }

  close(): void {
    this.normalClose = true;
    clearTimeout(this.pingTimer);
    this.socket.close();
  }
}

/** Collects the messages emitted for a group until `n` arrived. */
function collect(client: EventEmitter, group: string): { messages: any[]; until(n: number): Promise<any[]> } {
  const messages: any[] = [];
  const more = new EventEmitter();
  client.on(group, (_err: unknown, data: any) => {
    messages.push(data.message);
    more.emit("more");
  });
  return {
    messages,
    async until(n) {
      while (messages.length < n) await once(more, "more");
      return messages.slice(0, n);
    },
  };
}

async function serverOn(store: MemoryStore, port = 0): Promise<TidingsServer> {
  const server = await createServer({
    secret: TEST_SECRET,
    logLevel: "silent",
    databases: ["test"],
    storeInstance: store,
    accessRules: [{ channels: "invoice-*" }],
  });
  await server.listen(port, "127.0.0.1");
  return server;
}

describe("WebSocket: what a rohrpost-js client relies on", () => {
  test("subscribe/unsubscribe replies by group, pushes routed by data.group, errors reject", async () => {
    const server = await serverOn(new MemoryStore());
    const client = new RohrpostLikeClient(`${server.url.replace("http", "ws")}/test/ws`, {
      token: await token("7"),
      pingInterval: 5000,
      reconnectDelay: 50,
    });
    try {
      await once(client, "open");
      assert.deepEqual(await client.subscribe({ type: "invoice", id: 42 }), { group: "invoice-42" });
      assert.deepEqual(await client.subscribe({ type: "invoice", id: 43 }), { group: "invoice-43" });
      const on42 = collect(client, "invoice-42");
      const on43 = collect(client, "invoice-43");
      const a = await server.bus.publish("test", "invoice-42", { type: "updated", fields: ["amount"] });
      const b = await server.bus.publish("test", "invoice-43", { type: "updated", fields: ["state"] });
      assert.deepEqual(await on42.until(1), [{ message_id: a, type: "updated", fields: ["amount"] }]);
      assert.deepEqual(await on43.until(1), [{ message_id: b, type: "updated", fields: ["state"] }]);
      assert.deepEqual(await client.unsubscribe({ type: "invoice", id: 42 }), { group: "invoice-42" });
      await assert.rejects(client.subscribe({ type: "secret", id: 1 }), (e) => e === 'Not allowed to read channel "secret-1".');
      await assert.rejects(client.call("no-such-call", {}), (e) => e === "Unknown message type 'no-such-call'.");
    } finally {
      client.close();
      await server.close();
    }
  });

  test("application pings every interval are answered, also while a slow request is pending", async () => {
    const server = await serverOn(new MemoryStore());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    server.bus.handle("report", async (_ctx, req) => {
      await gate;
      return { rows: 3, asked: req.data };
    });
    const client = new RohrpostLikeClient(`${server.url.replace("http", "ws")}/test/ws`, {
      token: await token("7"),
      pingInterval: 100,
      reconnectDelay: 50,
    });
    try {
      await once(client, "open");
      const answer = client.call("report", { year: 2024 });
      while (client.pongs < 3) await once(client, "pong");
      release();
      assert.deepEqual(await answer, { rows: 3, asked: { year: 2024 } });
      assert.equal(client.socket.readyState, WebSocket.OPEN);
    } finally {
      client.close();
      await server.close();
    }
  });

  test("after the server restarts (1001), the client reconnects, resubscribes with its cursor and loses nothing", async () => {
    const store = new MemoryStore();
    let server = await serverOn(store);
    const port = new URL(server.url).port;
    const client = new RohrpostLikeClient(`ws://127.0.0.1:${port}/test/ws`, {
      token: await token("7"),
      pingInterval: 5000,
      reconnectDelay: 30,
    });
    try {
      await once(client, "open");
      await client.subscribe({ type: "invoice", id: 7 });
      const got = collect(client, "invoice-7");
      const published: string[] = [];
      for (let i = 0; i < 3; i++) published.push(await server.bus.publish("test", "invoice-7", { type: "t", i }));
      await got.until(3);
      const closed = once(client, "closed");
      await server.close();
      assert.deepEqual(await closed, [1001]);
      // The same store behind a new instance; messages published before the client is back.
      server = await serverOn(store, Number(port));
      for (let i = 3; i < 6; i++) published.push(await server.bus.publish("test", "invoice-7", { type: "t", i }));
      await got.until(6);
      for (let i = 6; i < 8; i++) published.push(await server.bus.publish("test", "invoice-7", { type: "t", i }));
      const all = await got.until(8);
      assert.deepEqual(
        all.map((m) => m.message_id),
        published,
      );
      assert.equal(got.messages.length, 8);
    } finally {
      client.close();
      await server.close();
    }
  });
});
