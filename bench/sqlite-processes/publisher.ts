/**
 * A publisher process of the SQLite two-process bench: `rate` messages per second on one
 * channel, either as an application beside the server (`createBus` on the server's SQLite
 * file) or through the server itself (`POST /<db>/publish`). Each message carries its send
 * time `t`; the process reports, per message id, when it was sent and when the publish was
 * acknowledged.
 */
import { Agent, request } from "node:http";
import { createBus } from "../../src/bus.js";
import { now } from "../scale-out/ipc.js";

export type Via = { kind: "bus"; store: string } | { kind: "server"; url: string; token: string };
export type ToPublisher = { type: "run"; via: Via; db: string; channel: string; rate: number; seconds: number };
export type FromPublisher = { type: "done"; acks: Array<[id: string, sentAt: number, ackedAt: number]> } | { type: "error"; text: string };

const send = (m: FromPublisher): void => void process.send!(m);

function poster(url: string, db: string, token: string): (body: string) => Promise<string> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  return (body) =>
    new Promise((resolve, reject) => {
      const req = request(`${url}/${db}/publish`, {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": Buffer.byteLength(body) },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => (res.statusCode === 200 ? resolve((JSON.parse(text) as { message_id: string }).message_id) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
      });
      req.end(body);
    });
}

async function run(m: Extract<ToPublisher, { type: "run" }>): Promise<void> {
  const bus = m.via.kind === "bus" ? await createBus({ store: m.via.store, databases: [m.db], logLevel: "silent" }) : null;
  const post = m.via.kind === "server" ? poster(m.via.url, m.db, m.via.token) : null;
  const acks: Array<[string, number, number]> = [];
  const pending: Promise<void>[] = [];
  const started = now();
  try {
    for (let i = 0; i < m.rate * m.seconds; i++) {
      const wait = started + (i * 1000) / m.rate - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const sentAt = now();
      const message = { type: "bench", n: i, t: sentAt };
      const acked = bus !== null ? bus.publish(m.db, m.channel, message) : post!(JSON.stringify({ channel: m.channel, message }));
      pending.push(acked.then((id) => void acks.push([id, sentAt, now()])));
    }
    await Promise.all(pending);
  } finally {
    await bus?.close();
  }
  send({ type: "done", acks });
}

process.on("message", (m: ToPublisher) => {
  if (m.type === "run") run(m).catch((e: unknown) => send({ type: "error", text: String((e as Error).stack ?? e) }));
});
