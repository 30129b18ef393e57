/**
 * A soak client process: many clients of one transport, each on its channel, each leaving
 * now and then on purpose and resuming from its cursor after a pause, as people on phones
 * and laptops do. Every client keeps the ids it is given; a repeat or a step back is seen
 * at once, and at the end the runner hands over the store's log of every channel: each
 * client must hold exactly that log from its first message on — nothing missing, nothing
 * twice, in order. Latency is measured only for messages published while the client was
 * connected; those it caught up after a pause are counted apart.
 *
 * Events of a connection the client has left are ignored: its cursor is what it has
 * counted, so a message such a connection still brings is asked for again on resume.
 */
import { Agent, request, type ClientRequest } from "node:http";
import WebSocket from "ws";
import { Histogram } from "../longpoll/histogram.js";
import { now } from "../scale-out/ipc.js";
import type { Anomaly, ClientSpec, ClientsConfig, ClientsSample, FromClients, ToClients } from "./ipc.js";

const send = (m: FromClients): void => void process.send!(m);

interface Wire {
  readonly message_id?: unknown;
  readonly t?: unknown;
}

let config: ClientsConfig;
let hist = new Histogram();
let deliveries = 0;
let caughtUp = 0;
let duplicates = 0;
let disorder = 0;
let lost = 0;
let gaps = 0;
let failures = 0;
const anomalies: Anomaly[] = [];
let churning = true;
let onProgress: (() => void) | null = null;

function note(a: Anomaly): void {
  if (anomalies.length < 50) anomalies.push(a);
}

class Client {
  cursor: string | null = null;
  /** Log positions of every message delivered, in delivery order. */
  readonly ids: number[] = [];
  /** Generation of the current connection; events of older ones are dropped. */
  gen = 0;
  connectedAt = 0;
  connected = false;
  resumes = 0;
  private drop: (() => void) | null = null;
  private leaveTimer: NodeJS.Timeout | null = null;
  /** Long-poll only: one socket, kept alive between polls. */
  private agent: Agent | null = null;

  constructor(readonly spec: ClientSpec) {}

  deliver(gen: number, m: Wire): void {
    if (gen !== this.gen) return;
    const id = String(m.message_id);
    const t = now();
    deliveries++;
    this.ids.push(position(id));
    // Ids grow along the log: one not past the cursor was delivered already (or out of order).
    if (this.cursor !== null && id <= this.cursor) {
      const kind = this.ids.slice(0, -1).includes(position(id)) ? "duplicate" : "disorder";
      if (kind === "duplicate") duplicates++;
      else disorder++;
      note({ kind, transport: config.transport, user: this.spec.user, id, cursor: this.cursor, sinceConnectMs: t - this.connectedAt, resumes: this.resumes });
      return;
    }
    this.cursor = id;
    if (typeof m.t === "number" && m.t >= this.connectedAt) hist.record(t - m.t);
    else caughtUp++;
    onProgress?.();
  }

  /** Compares what it got with the log of its channel from its first message on; returns what is missing. */
  check(log: readonly number[]): number[] {
    const first = this.ids[0];
    if (first === undefined) return log.slice();
    const got = new Set(this.ids);
    return log.filter((id) => id >= first && !got.has(id));
  }

  connect(): void {
    const gen = ++this.gen;
    this.connectedAt = now();
    this.connected = true;
    this.drop = { websocket: () => this.websocket(gen), sse: () => this.sse(gen), longpoll: () => this.longpoll(gen) }[config.transport]();
    if (churning) {
      const stay = config.churnMs * (0.5 + Math.random());
      this.leaveTimer = setTimeout(() => this.leave(), stay);
    }
  }

  /** Leaves on purpose, comes back after a pause with its cursor. */
  leave(): void {
    this.disconnect();
    this.resumes++;
    this.leaveTimer = setTimeout(() => this.connect(), Math.random() * config.pauseMs);
  }

  /** The server or the network ended the connection: come back after a second. */
  failed(gen: number): void {
    if (gen !== this.gen) return;
    failures++;
    this.disconnect();
    this.leaveTimer = setTimeout(() => this.connect(), 1000);
  }

  disconnect(): void {
    if (this.leaveTimer !== null) clearTimeout(this.leaveTimer);
    this.leaveTimer = null;
    this.gen++;
    this.connected = false;
    this.drop?.();
    this.drop = null;
  }

  /** Stops leaving; a client that is away comes back at once. */
  settle(): void {
    if (this.leaveTimer !== null) clearTimeout(this.leaveTimer);
    this.leaveTimer = null;
    if (!this.connected) this.connect();
  }

  private websocket(gen: number): () => void {
    const url = `${config.url.replace(/^http/, "ws")}/${config.db}/ws?token=${encodeURIComponent(this.spec.token)}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on("open", () => {
      ws.send(JSON.stringify({ id: 1, type: "subscribe", data: { channels: [this.spec.channel], last_message: this.cursor } }));
    });
    ws.on("message", (data) => {
      if (gen !== this.gen) return;
      const frame = JSON.parse(data.toString()) as { type?: string; error?: unknown; data?: { message?: Wire; gap?: boolean } };
      if (frame.error !== undefined) return this.failed(gen);
      if (frame.type !== "subscription-update" || frame.data === undefined) return;
      if (frame.data.gap) gaps++;
      if (frame.data.message !== undefined) this.deliver(gen, frame.data.message);
    });
    ws.on("error", () => {}); // "close" follows
    ws.on("close", () => this.failed(gen));
    return () => ws.terminate();
  }

  private sse(gen: number): () => void {
    const url = new URL(`${config.url}/${config.db}/events`);
    url.searchParams.set("channels", this.spec.channel);
    url.searchParams.set("token", this.spec.token);
    const req = request(url, {
      agent: false,
      headers: { accept: "text/event-stream", ...(this.cursor !== null ? { "last-event-id": this.cursor } : {}) },
    });
    req.on("error", () => this.failed(gen));
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return this.failed(gen);
      }
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0 && gen === this.gen; end = buffer.indexOf("\n\n")) {
          this.sseEvent(gen, buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
      res.on("error", () => this.failed(gen));
      res.on("close", () => this.failed(gen));
    });
    req.end();
    return () => req.destroy();
  }

  private sseEvent(gen: number, block: string): void {
    let name = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) name = line.slice(7);
      else if (line.startsWith("data: ")) data += line.slice(6);
    }
    if (name === "gap") gaps++;
    else if (name === "message" && data !== "") this.deliver(gen, (JSON.parse(data) as { message: Wire }).message);
  }

  /** Tryton's loop: one message per answer, the next poll at once with the cursor. */
  private longpoll(gen: number): () => void {
    this.agent ??= new Agent({ keepAlive: true, maxSockets: 1 });
    let current: ClientRequest | null = null;
    const poll = (): void => {
      if (gen !== this.gen) return;
      const body = JSON.stringify({ last_message: this.cursor, channels: [this.spec.channel] });
      const req = request(`${config.url}/${config.db}/bus`, {
        method: "POST",
        agent: this.agent!,
        headers: { "content-type": "application/json", authorization: `Bearer ${this.spec.token}`, "content-length": Buffer.byteLength(body) },
      });
      current = req;
      req.on("error", () => this.failed(gen));
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          if (gen !== this.gen) return;
          if (res.statusCode !== 200) return this.failed(gen);
          const answer = JSON.parse(text) as { message: Wire | null; gap?: boolean };
          if (answer.gap) gaps++;
          if (answer.message) this.deliver(gen, answer.message);
          poll();
        });
      });
      req.end(body);
    };
    poll();
    // Leaving mid-poll closes the socket, as a closed laptop does.
    return () => {
      current?.destroy();
      this.agent?.destroy();
      this.agent = null;
    };
  }
}

let clients: Client[] = [];

function sample(): ClientsSample {
  const s: ClientsSample = {
    transport: config.transport,
    deliveries,
    caughtUp,
    duplicates,
    disorder,
    lost,
    gaps,
    resumes: clients.reduce((n, c) => n + c.resumes, 0),
    failures,
    connected: clients.filter((c) => c.connected).length,
    latency: hist.toSparse(),
    anomalies: anomalies.splice(0),
  };
  hist = new Histogram();
  return s;
}

async function start(c: ClientsConfig): Promise<void> {
  config = c;
  clients = c.clients.map((spec) => new Client(spec));
  // Ramp up in steps, so that the server is not hit by thousands of handshakes in one tick.
  for (let i = 0; i < clients.length; i += 50) {
    for (const client of clients.slice(i, i + 50)) client.connect();
    await new Promise((r) => setTimeout(r, 20));
  }
  send({ type: "ready", connected: clients.filter((x) => x.connected).length });
}

/** The position in the log of a message id (`<epoch>:<zero-padded position>`). */
function position(id: string): number {
  return Number(id.slice(id.indexOf(":") + 1));
}

async function finish(log: Record<string, number[]>, timeoutMs: number): Promise<void> {
  churning = false;
  for (const c of clients) c.settle();
  const last = (c: Client): number => log[c.spec.channel]?.at(-1) ?? -1;
  const behind = (): Client[] => clients.filter((c) => (c.ids.at(-1) ?? -1) < last(c));
  const deadline = now() + timeoutMs;
  while (behind().length > 0 && now() < deadline) {
    await new Promise<void>((resolve) => {
      onProgress = resolve;
      setTimeout(resolve, 250);
    });
  }
  onProgress = null;
  const late = behind().length;
  for (const c of clients) {
    c.disconnect();
    const missing = c.check(log[c.spec.channel] ?? []);
    lost += missing.length;
    if (missing.length > 0) {
      const at = c.ids.findIndex((id) => id > missing[0]!);
      note({ kind: "lost", transport: config.transport, user: c.spec.user, id: missing.join(","), cursor: String(c.ids[at - 1] ?? null), sinceConnectMs: NaN, resumes: c.resumes, around: c.ids.slice(Math.max(0, at - 3), at + 3) });
    }
  }
  send({ type: "finished", behind: late, ...sample() });
}

process.on("message", (m: ToClients) => {
  const fail = (e: unknown): void => send({ type: "error", text: String((e as Error).stack ?? e) });
  if (m.type === "start") start(m.config).catch(fail);
  else if (m.type === "sample") send({ type: "sample", ...sample() });
  else if (m.type === "finish") finish(m.log, m.timeoutMs).catch(fail);
});
