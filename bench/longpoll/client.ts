/**
 * A load-generator process: many long-polling clients on raw keep-alive sockets with a
 * minimal HTTP/1.1 response parser (node's own HTTP client tops out near 14,000 req/s with
 * 1,000 clients; this one costs a fraction of that). Each client polls `user:<n>` and
 * `broadcast` with its cursor, and checks every message's sequence number and latency.
 */
import { connect, type Socket } from "node:net";
import { Histogram } from "./histogram.js";
import { now, type BenchMessage, type FromClient, type Target, type ToClient } from "./ipc.js";

interface Answer {
  channel: string | null;
  message: BenchMessage | null;
  messages?: Array<{ channel: string; message: BenchMessage }>;
}

const send = (m: FromClient): void => void process.send!(m);

/** Which sequence numbers of one stream arrived. */
class Stream {
  private seen = new Uint8Array(256);
  max = 0;
  distinct = 0;

  /** "new" | "late" (new but after a higher one: out of order) | "dup". */
  add(seq: number): "new" | "late" | "dup" {
    if (seq >= this.seen.length) {
      const bigger = new Uint8Array(Math.max(seq + 1, this.seen.length * 2));
      bigger.set(this.seen);
      this.seen = bigger;
    }
    if (this.seen[seq] === 1) return "dup";
    this.seen[seq] = 1;
    this.distinct++;
    if (seq < this.max) return "late";
    this.max = seq;
    return "new";
  }
}

const latency = new Histogram();
const totals = { deliveries: 0, responses: 0, outOfOrder: 0, duplicates: 0, errors: 0, reconnects: 0, firstDelivery: 0, lastDelivery: 0 };
let ready = 0;
let clients: PollClient[] = [];
let remaining = Infinity;
let expected: { broadcasts: number; perUser: Record<string, number> } | null = null;

class PollClient {
  private socket: Socket | null = null;
  private buf: Buffer | null = null;
  private bodyStart = -1;
  private bodyLength = 0;
  private status = 0;
  private closeAfter = false;
  private cursor: string | null = null;
  private synced = false;
  readonly broadcast = new Stream();
  readonly own = new Stream();
  private readonly head: string;
  private readonly channels: string;

  constructor(
    private readonly target: Target,
    readonly user: string,
    token: string,
    private readonly maxMessages: number | null,
  ) {
    this.head = `POST /${target.db}/bus HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: `;
    this.channels = JSON.stringify([`user:${user}`, "broadcast"]);
  }

  connect(): void {
    const s = connect(this.target.port, this.target.host);
    s.setNoDelay(true);
    s.on("connect", () => this.poll());
    s.on("data", (chunk: Buffer) => this.onData(chunk));
    s.on("error", () => {});
    s.on("close", () => {
      if (this.socket !== s) return;
      this.socket = null;
      totals.reconnects++;
      setTimeout(() => this.connect(), 100).unref();
    });
    this.socket = s;
    this.buf = null;
    this.bodyStart = -1;
  }

  close(): void {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }

  private poll(): void {
    const body = `{"last_message":${this.cursor === null ? "null" : `"${this.cursor}"`},"channels":${this.channels}${this.maxMessages === null ? "" : `,"max_messages":${this.maxMessages}`}}`;
    this.socket?.write(`${this.head}${body.length}\r\n\r\n${body}`);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.bodyStart < 0) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buf.toString("latin1", 0, end);
      this.status = Number(head.slice(9, 12));
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length === null) throw new Error(`response without content-length: ${head}`);
      this.bodyLength = Number(length[1]);
      this.bodyStart = end + 4;
      this.closeAfter = /\r\nconnection: *close/i.test(head);
    }
    if (this.buf.length < this.bodyStart + this.bodyLength) return;
    const body = this.buf.toString("utf8", this.bodyStart, this.bodyStart + this.bodyLength);
    this.buf = null;
    this.bodyStart = -1;
    totals.responses++;
    if (this.status !== 200) {
      totals.errors++;
      if (totals.errors <= 5) send({ type: "log", text: `HTTP ${this.status}: ${body.slice(0, 200)}` });
      setTimeout(() => this.poll(), 100).unref();
      return;
    }
    this.receive(JSON.parse(body) as Answer, now());
    if (this.closeAfter) this.socket?.destroy();
    else this.poll();
  }

  private receive(answer: Answer, at: number): void {
    const list = answer.messages ?? (answer.message !== null ? [{ channel: answer.channel!, message: answer.message }] : []);
    for (const { message: m } of list) {
      this.cursor = m.message_id;
      if (m.k === "s") {
        if (!this.synced) {
          this.synced = true;
          if (++ready === clients.length) send({ type: "ready" });
        }
        continue;
      }
      totals.deliveries++;
      if (totals.firstDelivery === 0) totals.firstDelivery = at;
      totals.lastDelivery = at;
      latency.record(at - m.ts);
      const outcome = (m.k === "b" ? this.broadcast : this.own).add(m.seq);
      if (outcome === "dup") totals.duplicates++;
      else {
        if (outcome === "late") totals.outOfOrder++;
        if (--remaining === 0) send({ type: "done" });
      }
    }
  }
}

process.on("message", (m: ToClient) => {
  if (m.type === "start") {
    clients = m.clients.map((c) => new PollClient(m.target, c.user, c.token, m.maxMessages));
    // A few at a time, so that the server's accept backlog does not overflow.
    let i = 0;
    const next = (): void => {
      for (const end = Math.min(i + 50, clients.length); i < end; i++) clients[i]!.connect();
      if (i < clients.length) setTimeout(next, 5);
    };
    next();
  } else if (m.type === "expect") {
    expected = m;
    let want = 0;
    let have = 0;
    for (const c of clients) {
      want += m.broadcasts + (m.perUser[c.user] ?? 0);
      have += c.broadcast.distinct + c.own.distinct;
    }
    remaining = want - have;
    if (remaining <= 0) send({ type: "done" });
  } else if (m.type === "report") {
    let lost = 0;
    for (const c of clients) {
      lost += Math.max(0, (expected?.broadcasts ?? 0) - c.broadcast.distinct);
      lost += Math.max(0, (expected?.perUser[c.user] ?? 0) - c.own.distinct);
    }
    send({ type: "stats", ...totals, lost, latency: latency.toSparse() });
    for (const c of clients) c.close();
    setImmediate(() => process.exit(0));
  }
});
