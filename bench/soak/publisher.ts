/**
 * The soak's publisher process: `rate` messages per second, round robin over the channels,
 * through `POST /<db>/publish`. Each channel's messages go one after the other and carry a
 * sequence number of their channel (`seq`) and their send time (`t`), from which clients
 * check completeness and measure latency. A refused or unanswered publish is retried with
 * the same `seq`, so that a gap in `seq` at a client is always a lost message (and a seq
 * seen twice under two ids is a publish repeated after an answer that never came).
 */
import { Agent, request } from "node:http";
import { now } from "../scale-out/ipc.js";
import type { FromPublisher, PublisherConfig, ToPublisher } from "./ipc.js";

const send = (m: FromPublisher): void => void process.send!(m);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(c: PublisherConfig, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${c.url}/${c.db}/publish`, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${c.token}`, "content-length": Buffer.byteLength(body) },
    });
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.end(body);
  });
}

let stopping = false;
let published = 0;
let errors = 0;
let firstError: string | null = null;
const lastSeq: Record<string, number> = {};
let skipped = 0;
/** Per channel, the publish in flight. */
const inFlight = new Map<string, Promise<void>>();

async function publishOne(c: PublisherConfig, channel: string, seq: number): Promise<void> {
  for (;;) {
    try {
      const status = await post(c, JSON.stringify({ channel, message: { type: "soak", seq, t: now() } }));
      if (status === 200) {
        published++;
        lastSeq[channel] = seq;
        return;
      }
      throw new Error(`HTTP ${status}`);
    } catch (e) {
      errors++;
      firstError ??= String(e);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function run(c: PublisherConfig): Promise<void> {
  const next = new Map(c.channels.map((ch) => [ch, 0]));
  const interval = 1000 / c.rate;
  const started = now();
  for (let i = 0; !stopping; i++) {
    const wait = started + i * interval - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const channel = c.channels[i % c.channels.length]!;
    // One publish per channel at a time, so that seq order is log order; a server that is
    // behind gets fewer publishes rather than a queue that grows without end.
    if (inFlight.has(channel)) {
      skipped++;
      continue;
    }
    const seq = next.get(channel)!;
    next.set(channel, seq + 1);
    inFlight.set(channel, publishOne(c, channel, seq).finally(() => inFlight.delete(channel)));
  }
  await Promise.all(inFlight.values());
  send({ type: "stopped", published, errors, firstError, skipped, lastSeq });
}

process.on("message", (m: ToPublisher) => {
  if (m.type === "start") run(m.config).catch((e: unknown) => send({ type: "error", text: String((e as Error).stack ?? e) }));
  else if (m.type === "stop") stopping = true;
});
