/**
 * The soak's publisher process: `rate` messages per second, round robin over the channels,
 * through `POST /<db>/publish`, one at a time per channel. Each message carries its send
 * time (`t`) for latency. A refused or unanswered publish is tried again (an unanswered one
 * may be stored twice, as for any client): what counts is the store's log, against which
 * the runner checks the clients, and that every acknowledged id is in it.
 */
import { Agent, request } from "node:http";
import { now } from "../scale-out/ipc.js";
import type { FromPublisher, PublisherConfig, ToPublisher } from "./ipc.js";

const send = (m: FromPublisher): void => void process.send!(m);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function post(c: PublisherConfig, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${c.url}/${c.db}/publish`, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${c.token}`, "content-length": Buffer.byteLength(body) },
    });
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.end(body);
  });
}

let stopping = false;
let errors = 0;
let firstError: string | null = null;
const acked: string[] = [];
let skipped = 0;
/** Per channel, the publish in flight. */
const inFlight = new Map<string, Promise<void>>();

async function publishOne(c: PublisherConfig, channel: string, n: number): Promise<void> {
  for (;;) {
    try {
      const { status, text } = await post(c, JSON.stringify({ channel, message: { type: "soak", n, t: now() } }));
      if (status !== 200) throw new Error(`HTTP ${status}: ${text.slice(0, 200)}`);
      acked.push((JSON.parse(text) as { message_id: string }).message_id);
      return;
    } catch (e) {
      errors++;
      firstError ??= String(e);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function run(c: PublisherConfig): Promise<void> {
  const interval = 1000 / c.rate;
  const started = now();
  for (let i = 0; !stopping; i++) {
    const wait = started + i * interval - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const channel = c.channels[i % c.channels.length]!;
    // One publish per channel at a time: a server that is behind gets fewer publishes
    // rather than a queue that grows without end.
    if (inFlight.has(channel)) {
      skipped++;
      continue;
    }
    inFlight.set(channel, publishOne(c, channel, i).finally(() => inFlight.delete(channel)));
  }
  await Promise.all(inFlight.values());
  send({ type: "stopped", published: acked.length, errors, firstError, skipped, acked });
}

process.on("message", (m: ToPublisher) => {
  if (m.type === "start") run(m.config).catch((e: unknown) => send({ type: "error", text: String((e as Error).stack ?? e) }));
  else if (m.type === "stop") stopping = true;
});
