/**
 * Long-polling clients of bench/tryton in a process of their own (the runner publishes and
 * keeps time; one process could not also drive 10,000 polls/s). Each client polls as a
 * Tryton client does: one message per answer, re-polling from the last message_id, with
 * the Tryton session header. argv: <bus url> <authorization header> <count> <id prefix> <load>.
 * Sends `{ ready }` once every client has sent its first poll, then `{ distinct }` (notifications
 * received, over all clients) every 200 ms; on a message with the number of
 * notifications published, answers with the counts, the latency histogram (from the
 * publisher's request) and every receipt as [seq, epoch ms].
 */
import { Client as HttpClient } from "undici";
import { Histogram } from "../longpoll/histogram.js";

export interface ClientsReport {
  delivered: number;
  missing: number;
  duplicated: number;
  outOfOrder: number;
  latency: Array<[number, number]>;
  receipts: Array<[number, number]>;
  errors: Array<[string, number]>;
}

type Answer = { message: { message_id: string; title: string; body: string } | null };

const [url, authorization, count, prefix, load] = process.argv.slice(2) as [string, string, string, string, string];
const target = new URL(url);
const totals = { delivered: 0, duplicated: 0, outOfOrder: 0 };
const latency = new Histogram();
const receipts: Array<[number, number]> = [];
const errors = new Map<string, number>();
let stopped = false;

/** One keep-alive connection per client, as a browser tab holds: undici costs the load generator less CPU than node:http. */
function connect(): HttpClient {
  return new HttpClient(target.origin, { pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 600_000 });
}

async function poll(http: HttpClient, cursor: string | null, id: string): Promise<Answer> {
  const res = await http.request({
    method: "POST",
    path: target.pathname,
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ last_message: cursor, channels: [`client:${id}`] }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Answer;
}

class Client {
  private cursor: string | null = null;
  readonly seen = new Set<number>();
  private maxSeq = -1;
  readonly http = connect();
  constructor(private readonly id: string) {}

  async run(started: () => void): Promise<void> {
    let first = true;
    while (!stopped) {
      let answer: Answer;
      try {
        const pending = poll(this.http, this.cursor, this.id);
        if (first) started();
        first = false;
        answer = await pending;
      } catch (e) {
        if (stopped) break;
        const key = String(e).slice(0, 120);
        errors.set(key, (errors.get(key) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const m = answer.message;
      if (m === null) continue;
      this.cursor = m.message_id;
      // Clients start without a cursor: the server may answer recent messages of an earlier load first.
      const [loadOf, title] = m.title.split(":") as [string, string];
      if (loadOf !== load || title === "warm-up") continue;
      const seq = Number(title);
      const now = Date.now();
      latency.record(now - Number(m.body));
      receipts.push([seq, now]);
      totals.delivered++;
      if (this.seen.has(seq)) totals.duplicated++;
      else this.seen.add(seq);
      if (seq < this.maxSeq) totals.outOfOrder++;
      this.maxSeq = Math.max(this.maxSeq, seq);
    }
  }
}

const clients = Array.from({ length: Number(count) }, (_, i) => new Client(`${prefix}-${i}`));
// Progress for the runner's wait: distinct notifications received over all clients.
setInterval(() => process.send!({ distinct: clients.reduce((a, c) => a + c.seen.size, 0) }), 200).unref();
let waiting = clients.length;
for (const c of clients) void c.run(() => --waiting === 0 && process.send!({ ready: true }));
process.on("message", (m: { total: number }) => {
  if (stopped) return;
  stopped = true;
  for (const c of clients) void c.http.destroy();
  const report: ClientsReport = {
    ...totals,
    missing: clients.reduce((a, c) => a + (m.total - c.seen.size), 0),
    latency: latency.toSparse(),
    receipts,
    errors: [...errors],
  };
  process.send!(report, () => process.exit(0));
});
