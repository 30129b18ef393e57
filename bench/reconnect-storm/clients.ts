/**
 * A share of the clients of bench/reconnect-storm, in a process of its own: `tidings`
 * clients are the SDK (`createClient`, default transports and backoff) subscribed to
 * "storm"; `socket.io` clients are socket.io-client with its default reconnection.
 * argv: <tidings|socket.io> <url> <count> <first client number>.
 *
 * Each client keeps the receipt time of every message by its sequence number, and the time
 * of each (re)connection. The parent sends `{ killAt }` after the kill, `{ last }` once the
 * last message is published, and gets `{ back, complete }` every 250 ms (clients connected
 * again / holding message `last`); "report" with `{ killAt, burstLast, last }` gets one
 * summary per client, and why the SDK clients waited to reconnect, by reason.
 */
import WebSocket from "ws";
import { io as ioClient } from "socket.io-client";
import { signToken } from "../../src/auth/tokens.js";
import { createClient } from "../../src/client/index.js";
import { BENCH_DB, BENCH_SECRET, epochMs } from "../changes/constants.js";

export interface ReportRequest {
  readonly killAt: number;
  /** Sequence number of the last message published right after the restart. */
  readonly burstLast: number;
  readonly last: number;
}

export interface ClientSummary {
  /** First connection after the kill (epoch ms), or null. */
  readonly reconnectedAt: number | null;
  /** Receipt of message `burstLast` (epoch ms), or null. */
  readonly caughtUpAt: number | null;
  readonly missing: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  /** The transport of the first connection after the kill (socket.io: "websocket"). */
  readonly transport: string | null;
}

const [kind, url, count, first] = process.argv.slice(2) as [string, string, string, string];
const MAX_SEQ = 100_000;

class Tracker {
  readonly receivedAt = new Float64Array(MAX_SEQ);
  readonly connectedAt: number[] = [];
  readonly transports: string[] = [];
  duplicated = 0;
  outOfOrder = 0;
  private maxSeq = -1;

  received(seq: number): void {
    if (this.receivedAt[seq] !== 0) this.duplicated++;
    else this.receivedAt[seq] = epochMs();
    if (seq < this.maxSeq) this.outOfOrder++;
    this.maxSeq = Math.max(this.maxSeq, seq);
  }

  summary(r: ReportRequest): ClientSummary {
    let missing = 0;
    for (let s = 0; s <= r.last; s++) if (this.receivedAt[s] === 0) missing++;
    const after = this.connectedAt.findIndex((t) => t > r.killAt);
    return {
      reconnectedAt: after < 0 ? null : this.connectedAt[after]!,
      transport: after < 0 ? null : this.transports[after]!,
      caughtUpAt: this.receivedAt[r.burstLast] || null,
      missing,
      duplicated: this.duplicated,
      outOfOrder: this.outOfOrder,
    };
  }
}

const trackers: Tracker[] = [];
/** `reconnecting` events of the SDK clients, by reason. */
const reasons = new Map<string, number>();
const closers: Array<() => void> = [];
const ready: Promise<void>[] = [];
for (let i = 0; i < Number(count); i++) {
  const t = new Tracker();
  trackers.push(t);
  if (kind === "tidings") {
    const token = await signToken(BENCH_SECRET, { db: BENCH_DB, user: `c${Number(first) + i}`, ttlSeconds: 3600 });
    const client = createClient({ url, db: BENCH_DB, token, WebSocket: WebSocket as never });
    client.on("reconnecting", (e) => reasons.set(e.reason.slice(0, 100), (reasons.get(e.reason.slice(0, 100)) ?? 0) + 1));
    client.on("connected", (e) => {
      t.connectedAt.push(epochMs());
      t.transports.push(e.transport);
    });
    const sub = client.subscribe("storm", (m) => t.received(m.seq as number));
    ready.push(sub.ready);
    closers.push(() => client.close());
  } else {
    const socket = ioClient(url, { transports: ["websocket"] });
    socket.on("connect", () => {
      t.connectedAt.push(epochMs());
      t.transports.push("websocket");
    });
    socket.on("m", (m: { seq: number }) => t.received(m.seq));
    ready.push(new Promise((ok) => socket.once("connect", () => ok())));
    closers.push(() => socket.close());
  }
}
await Promise.all(ready);
process.send!({ ready: true });
let killAt = Infinity;
let last = -1;
setInterval(() => {
  const back = trackers.filter((t) => t.connectedAt.some((c) => c > killAt)).length;
  const complete = last < 0 ? 0 : trackers.filter((t) => t.receivedAt[last] !== 0).length;
  process.send!({ back, complete });
}, 250).unref();
process.on("message", (m: Partial<ReportRequest> & { report?: boolean }) => {
  if (m.killAt !== undefined) killAt = m.killAt;
  if (m.last !== undefined) last = m.last;
  if (m.report !== true) return;
  const summaries = trackers.map((t) => t.summary(m as ReportRequest));
  for (const c of closers) c();
  process.send!({ summaries, reasons: [...reasons] }, () => process.exit(0));
});
