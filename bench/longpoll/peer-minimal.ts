/**
 * The yardstick: a minimal in-memory long-poll server, written the way a Node developer
 * would write one by hand in an afternoon. node:http, one array of messages, waiters per
 * channel, the same wire as tidings (POST /<db>/bus, POST /<db>/publish). No auth, no
 * limits, no persistence, no retention: it only has to be fast.
 *
 *   node --import tsx bench/longpoll/peer-minimal.ts [port]   → prints "listening <port>"
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

type Message = { message_id: string } & Record<string, unknown>;
interface Entry {
  channel: string;
  message: Message;
}
interface Waiter {
  channels: string[];
  res: ServerResponse;
  batch: boolean;
  max: number;
  timer: NodeJS.Timeout;
}
interface Db {
  log: Entry[];
  waiters: Map<string, Set<Waiter>>;
}

const POLL_TIMEOUT_MS = 300_000;
const dbs = new Map<string, Db>();

function dbOf(name: string): Db {
  let db = dbs.get(name);
  if (!db) {
    db = { log: [], waiters: new Map() };
    dbs.set(name, db);
  }
  return db;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function answer(res: ServerResponse, entries: Entry[], batch: boolean): void {
  const first = entries[0];
  const body: Record<string, unknown> = { channel: first?.channel ?? null, message: first?.message ?? null };
  if (batch) body.messages = entries;
  send(res, 200, body);
}

function unpark(db: Db, w: Waiter): void {
  clearTimeout(w.timer);
  for (const c of w.channels) db.waiters.get(c)?.delete(w);
}

interface Body {
  last_message?: string | null;
  channels: string[];
  max_messages?: number;
  channel: string;
  message: Record<string, unknown>;
  messages?: Array<{ channel: string; message: Record<string, unknown> }>;
}

function poll(db: Db, body: Body, res: ServerResponse): void {
  const max = body.max_messages ?? 1;
  const batch = body.max_messages !== undefined;
  // Ids are positions in the log: resume right after the cursor; without one, wait for new messages.
  const start = body.last_message == null ? db.log.length : Number(body.last_message);
  const found: Entry[] = [];
  for (let i = start; i < db.log.length && found.length < max; i++) {
    if (body.channels.includes(db.log[i]!.channel)) found.push(db.log[i]!);
  }
  if (found.length > 0) return answer(res, found, batch);
  const w: Waiter = {
    channels: body.channels,
    res,
    batch,
    max,
    timer: setTimeout(() => {
      unpark(db, w);
      answer(res, [], batch);
    }, POLL_TIMEOUT_MS),
  };
  for (const c of body.channels) {
    let set = db.waiters.get(c);
    if (!set) db.waiters.set(c, (set = new Set()));
    set.add(w);
  }
  res.on("close", () => unpark(db, w));
}

function publish(db: Db, items: Array<{ channel: string; message: Record<string, unknown> }>): string[] {
  const ids: string[] = [];
  const woken = new Map<Waiter, Entry[]>();
  for (const { channel, message } of items) {
    const entry = { channel, message: { ...message, message_id: String(db.log.length + 1) } };
    db.log.push(entry);
    ids.push(entry.message.message_id);
    for (const w of db.waiters.get(channel) ?? []) {
      const got = woken.get(w) ?? [];
      if (got.length < w.max) got.push(entry);
      woken.set(w, got);
    }
  }
  for (const [w, entries] of woken) {
    unpark(db, w);
    answer(w.res, entries, w.batch);
  }
  return ids;
}

function handle(req: IncomingMessage, res: ServerResponse, text: string): void {
  const [, name, route] = (req.url ?? "").split("/");
  let body: Body;
  try {
    body = JSON.parse(text) as Body;
  } catch {
    return send(res, 400, { error: "bad json" });
  }
  const db = dbOf(name ?? "");
  if (route === "bus") return poll(db, body, res);
  if (route === "publish") {
    if (Array.isArray(body.messages)) return send(res, 200, { message_ids: publish(db, body.messages) });
    return send(res, 200, { message_id: publish(db, [body])[0] });
  }
  send(res, 404, { error: "not found" });
}

const server = createServer((req, res) => {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (c: string) => (text += c));
  req.on("end", () => handle(req, res, text));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
process.on("SIGTERM", () => process.exit(0));
