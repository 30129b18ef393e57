/**
 * A subscriber process: `connections` clients of one transport on one instance, all on one
 * channel. Records each delivery's latency from the send time `t` inside the message, per
 * connection counts, and order (ids must grow on every connection).
 */
import { Agent, request } from "node:http";
import WebSocket from "ws";
import { Histogram } from "../longpoll/histogram.js";
import { now, type FromSubscriber, type SubscribeConfig, type ToSubscriber } from "./ipc.js";

const send = (m: FromSubscriber): void => void process.send!(m);

const hist = new Histogram();
let counts = new Int32Array(0);
let lastIds: string[] = [];
let deliveries = 0;
let firstDelivery = 0;
let lastDelivery = 0;
let outOfOrder = 0;
let closed = 0;
let expected = Infinity;
let reachedCount = 0;
let stopping = false;
let times: Array<[string, number]> | null = null;

function deliver(conn: number, message: { message_id?: unknown; t?: unknown; warm?: unknown }): void {
  const t = now();
  if (deliveries === 0) firstDelivery = t;
  lastDelivery = t;
  deliveries++;
  if (typeof message.t === "number" && message.warm !== true) hist.record(t - message.t);
  const id = String(message.message_id);
  times?.push([id, t]);
  if (id <= lastIds[conn]!) outOfOrder++;
  lastIds[conn] = id;
  if (++counts[conn]! === expected && ++reachedCount === counts.length) send({ type: "reached" });
}

function channelsOf(c: SubscribeConfig): string[] {
  return [c.channel, ...(c.moreChannels ?? [])];
}

function urlOf(c: SubscribeConfig, conn: number): string {
  return c.urls[conn % c.urls.length]!;
}

function websocket(c: SubscribeConfig, conn: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${urlOf(c, conn).replace(/^http/, "ws")}/${c.db}/ws?token=${encodeURIComponent(c.token)}`);
    ws.on("open", () => ws.send(JSON.stringify({ id: 1, type: "subscribe", data: { channels: channelsOf(c) } })));
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as { id?: unknown; type?: string; error?: string; data?: { message?: { message_id?: unknown; t?: unknown; warm?: unknown } } };
      if (frame.type === "subscription-update" && frame.data?.message) deliver(conn, frame.data.message);
      else if (frame.type === "subscribe" && frame.id === 1) (frame.error ? reject(new Error(frame.error)) : resolve());
    });
    ws.on("error", reject);
    ws.on("close", () => void (stopping || closed++));
  });
}

function sse(c: SubscribeConfig, conn: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${urlOf(c, conn)}/${c.db}/events`);
    url.searchParams.set("channels", channelsOf(c).join(","));
    url.searchParams.set("token", c.token);
    const req = request(url, { agent: false, headers: { accept: "text/event-stream" } });
    req.on("error", reject);
    req.on("response", (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE: HTTP ${res.statusCode}`));
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          if (data === undefined || block.startsWith("event:")) continue;
          const { message } = JSON.parse(data.slice(6)) as { message: { message_id?: unknown; t?: unknown; warm?: unknown } };
          deliver(conn, message);
        }
      });
      res.on("close", () => void (stopping || closed++));
      resolve();
    });
    req.end();
  });
}

/** Tryton's loop with the batch extension (`max_messages: 100`), so that one client can keep up. */
function longpoll(c: SubscribeConfig, conn: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let cursor: string | null = null;
  const poll = (): void => {
    const body = JSON.stringify({ last_message: cursor, channels: channelsOf(c), max_messages: 100 });
    const req = request(`${urlOf(c, conn)}/${c.db}/bus`, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${c.token}`, "content-length": Buffer.byteLength(body) },
    });
    req.on("error", () => void (stopping || closed++));
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        const answer = JSON.parse(text) as { messages?: { message: { message_id: string; t?: unknown; warm?: unknown } }[] };
        for (const m of answer.messages ?? []) {
          deliver(conn, m.message);
          cursor = m.message.message_id;
        }
        if (!stopping) poll();
      });
    });
    req.end(body);
  };
  poll();
  return Promise.resolve();
}

async function start(c: SubscribeConfig): Promise<void> {
  counts = new Int32Array(c.connections);
  if (c.keepTimes) times = [];
  lastIds = Array.from({ length: c.connections }, () => "");
  const open = { websocket, sse, longpoll }[c.transport];
  for (let i = 0; i < c.connections; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, c.connections - i) }, (_, k) => open(c, i + k)));
  }
  send({ type: "ready" });
}

let transport: SubscribeConfig["transport"] = "websocket";
process.on("message", (m: ToSubscriber) => {
  if (m.type === "start") {
    transport = m.config.transport;
    start(m.config).catch((e: unknown) => send({ type: "error", text: String(e) }));
  } else if (m.type === "expect") {
    expected = m.perConnection;
    reachedCount = 0;
    for (const n of counts) if (n >= expected) reachedCount++;
    if (reachedCount === counts.length) send({ type: "reached" });
  } else if (m.type === "report") {
    stopping = true;
    send({
      type: "stats",
      transport,
      deliveries,
      minPerConnection: Math.min(...counts),
      firstDelivery,
      lastDelivery,
      outOfOrder,
      closed,
      latency: hist.toSparse(),
      ...(times !== null ? { times } : {}),
    });
  }
});
