/**
 * The publisher process: one keep-alive connection, one request in flight at a time (so
 * the log order is the sequence order), messages stamped with the time they are sent.
 */
import { Agent, request } from "node:http";
import { now, type FromPublisher, type Scenario, type Target, type ToPublisher } from "./ipc.js";

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
let target: Target;
let token = "";
let syncing = false;
let requests = 0;

const send = (m: FromPublisher): void => void process.send!(m);

interface Item {
  channel: string;
  message: { type: string; k: string; seq: number; ts: number };
}

function post(items: Item[]): Promise<void> {
  const body = JSON.stringify({ messages: items });
  requests++;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: `/${target.db}/publish`,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${token}` },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`publish: HTTP ${res.statusCode} ${text.slice(0, 300)}`))));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sync(): Promise<void> {
  let seq = 0;
  while (syncing) {
    await post([{ channel: "broadcast", message: { type: "bench", k: "s", seq: ++seq, ts: now() } }]);
    await wait(100);
  }
  send({ type: "syncStopped" });
}

async function run(s: Scenario): Promise<void> {
  const perUser: Record<string, number> = {};
  for (let u = 0; u < s.users; u++) perUser[String(u)] = 0;
  let broadcasts = 0;
  let nextUser = 0;
  const userItem = (ts: number): Item => {
    const user = String(nextUser);
    nextUser = (nextUser + 1) % s.users;
    return { channel: `user:${user}`, message: { type: "bench", k: "u", seq: ++perUser[user]!, ts } };
  };
  const broadcastItem = (ts: number): Item => ({ channel: "broadcast", message: { type: "bench", k: "b", seq: ++broadcasts, ts } });
  const startedAt = now();

  if (s.kind === "rate") {
    // Every user gets userRate messages/s, round robin, plus broadcastRate broadcasts/s.
    const userTotal = Math.round((s.users * s.userRate * s.durationMs) / 1000);
    const broadcastTotal = Math.round((s.broadcastRate * s.durationMs) / 1000);
    let sentUsers = 0;
    for (;;) {
      const t = now();
      const elapsed = t - startedAt;
      const dueUsers = Math.min(userTotal, Math.floor((elapsed * s.users * s.userRate) / 1000));
      const dueBroadcasts = Math.min(broadcastTotal, Math.floor((elapsed * s.broadcastRate) / 1000) + 1);
      const items: Item[] = [];
      while (broadcasts < dueBroadcasts) items.push(broadcastItem(t));
      for (; sentUsers < dueUsers; sentUsers++) items.push(userItem(t));
      if (items.length > 0) await post(items);
      if (sentUsers >= userTotal && broadcasts >= broadcastTotal) break;
      await wait(1);
    }
  } else {
    // A backlog published as fast as the server takes it: broadcasts interleaved with user messages.
    const items: Item[] = [];
    const userTotal = s.users * s.perUser;
    const t = now();
    for (let b = 0, u = 0; b < s.broadcasts || u < userTotal; ) {
      if (b < s.broadcasts) {
        items.push(broadcastItem(t));
        b++;
      }
      const until = s.broadcasts === 0 ? userTotal : Math.round((userTotal * b) / s.broadcasts);
      for (; u < until; u++) items.push(userItem(t));
    }
    for (let i = 0; i < items.length; i += 1000) {
      const chunk = items.slice(i, i + 1000);
      const ts = now();
      for (const item of chunk) item.message.ts = ts;
      await post(chunk);
    }
  }
  send({ type: "published", broadcasts, perUser, startedAt, endedAt: now(), requests });
}

process.on("message", (m: ToPublisher) => {
  const fail = (e: unknown): void => send({ type: "error", text: (e as Error).message });
  if (m.type === "init") {
    target = m.target;
    token = m.token;
  } else if (m.type === "sync") {
    syncing = true;
    sync().catch(fail);
  } else if (m.type === "syncStop") {
    syncing = false;
  } else if (m.type === "run") {
    run(m.scenario).catch(fail);
  }
});
