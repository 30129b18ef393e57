/**
 * Issue 9's memory and connection probes (items 5, 6, 7, 10), each against `tidings serve`
 * in a process of its own, for numbers in docs/security.md. The server's RSS is read from
 * /proc/<pid>/status: before the clients, at its peak while they act (sampled every 250 ms),
 * and after they left.
 *
 *   node --import tsx bench/security/process-probes.ts [--rounds 2] [--probes polls,metrics,websockets,tail,tail-1mib] <checkout>...
 *
 * Every probe runs once per checkout per round, alternating, so that an older checkout
 * (`git worktree add --detach /tmp/probe-before <commit>`) and this one share the machine's
 * load. Each checkout runs from its TypeScript sources.
 *
 * - `polls`: ~1,000 messages of 60 KB on one channel, then N (8, 20) long-polls of one
 *   user with `max_messages: 1000` from sockets that never read; then they close.
 * - `metrics`: 2 sockets writing pipelined `GET /metrics` (1,000 per write) for 5 s and
 *   never reading; without credentials, then with the metrics token.
 * - `websockets`: WebSockets opened without credentials that never authenticate: 1,100
 *   against a server at `ulimit -n 1024`, 2,100 at the machine's limit; whether a new
 *   request succeeds meanwhile, and what closes them.
 * - `tail`: 10,000 messages of 64 KiB published to one database; `tail-1mib` the same with
 *   `--tail-max-bytes 1MiB` (a checkout that has it), to tell the tail from what the
 *   publishing itself leaves in the process.
 */
import http from "node:http";
import net from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { signToken } from "../../src/auth/tokens.js";
import { memoryMiB } from "../longpoll/proc-stats.js";
import { startServeFrom, stopProcess, type ServeProcess } from "../serve-process.js";

const SECRET = "probe-secret-probe-secret-probe-secret-0123";
const METRICS_TOKEN = "probe-metrics-token-0123456789";
const DB = "tidings";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rss = (server: ServeProcess): number => Math.round(memoryMiB(server.child.pid!).rss);
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(" ");

/** Samples the server's RSS every 250 ms until stopped; `stop()` returns the highest. */
function sampleRss(server: ServeProcess): { stop(): number } {
  let peak = rss(server);
  const timer = setInterval(() => {
    if (server.child.exitCode === null) peak = Math.max(peak, rss(server));
  }, 250);
  return { stop: () => (clearInterval(timer), Math.max(peak, server.child.exitCode === null ? rss(server) : 0)) };
}

/** A checkout's server on a fresh SQLite file in a temporary directory, stopped and removed by `done`. */
async function serve(root: string, args: readonly string[], nofile?: number): Promise<{ server: ServeProcess; done(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "tidings-probe-"));
  const server = await startServeFrom(root, ["--secret", SECRET, "--data-dir", dir, "--log-level", "warn", ...args], nofile === undefined ? {} : { nofile });
  return {
    server,
    async done() {
      await stopProcess(server.child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A request on a connection of its own: the status, or the error code when it failed. */
function request(url: string, path: string, options: { method?: string; body?: string; token?: string; timeoutMs?: number } = {}): Promise<{ status: number | string; body: string }> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (options.body !== undefined) Object.assign(headers, { "content-type": "application/json", "content-length": Buffer.byteLength(options.body) });
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const req = http.request(`${url}${path}`, { method: options.method ?? "GET", headers, agent: false, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? e.message, body: "" }));
    req.end(options.body);
  });
}

/** Publishes `count` messages of `dataBytes` on `channel`, `perRequest` to a request, two requests at a time. */
async function publishMany(url: string, token: string, channel: string, count: number, dataBytes: number, perRequest: number): Promise<void> {
  const message = { type: "probe", data: "x".repeat(dataBytes) };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = Math.min(perRequest, count - next);
      next += n;
      const body = JSON.stringify({ messages: Array.from({ length: n }, () => ({ channel, message })) });
      const { status, body: answer } = await request(url, `/${DB}/publish`, { method: "POST", body, token, timeoutMs: 60_000 });
      if (status !== 200) throw new Error(`publish: ${status} ${answer.slice(0, 200)}`);
    }
  };
  await Promise.all([worker(), worker()]);
}

/** A raw TCP connection that writes `data` and never reads what comes back. */
function deafSocket(url: string, data: string): net.Socket {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  socket.pause();
  socket.on("error", () => {});
  socket.write(data);
  return socket;
}

function report(fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ ...fields, load: load() }));
}

async function polls(root: string, clients: number): Promise<void> {
  const { server, done } = await serve(root, []);
  try {
    const publisher = await signToken(SECRET, { db: DB, user: "app", role: "publisher" });
    const subscriber = await signToken(SECRET, { db: DB, user: "7", role: "subscriber", channels: ["big"] });
    const start = await request(server.url, `/${DB}/publish`, { method: "POST", body: JSON.stringify({ channel: "big", message: { type: "start" } }), token: publisher });
    const cursor = (JSON.parse(start.body) as { message_id: string }).message_id;
    await publishMany(server.url, publisher, "big", 1_000, 60_000, 15);
    await sleep(2_000);
    const before = rss(server);
    const sampler = sampleRss(server);
    const body = JSON.stringify({ last_message: cursor, channels: ["big"], max_messages: 1_000 });
    // One client that reads: what a single answer is.
    const one = await request(server.url, `/${DB}/bus`, { method: "POST", body, token: subscriber, timeoutMs: 60_000 });
    const answer = { status: one.status, bytes: one.body.length, ...(one.status === 200 ? {} : { error: one.body.slice(0, 200) }) };
    const head = `POST /${DB}/bus HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer ${subscriber}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const sockets = Array.from({ length: clients }, () => deafSocket(server.url, head + body));
    await sleep(8_000);
    const peak = sampler.stop();
    for (const s of sockets) s.destroy();
    await sleep(5_000);
    const health = await request(server.url, "/healthz");
    report({ probe: "polls", root, clients, readingClientGot: answer, rssMiB: { before, peak, after: rss(server) }, healthzAfter: health.status });
  } finally {
    await done();
  }
}

async function metrics(root: string, withToken: boolean, acceptsToken: boolean): Promise<void> {
  const { server, done } = await serve(root, acceptsToken ? ["--metrics-token", METRICS_TOKEN] : []);
  try {
    const auth = withToken ? `Authorization: Bearer ${METRICS_TOKEN}\r\n` : "";
    const once = await request(server.url, "/metrics", withToken ? { token: METRICS_TOKEN } : {});
    const chunk = `GET /metrics HTTP/1.1\r\nHost: probe\r\n${auth}\r\n`.repeat(1_000);
    await sleep(1_000);
    const before = rss(server);
    const sampler = sampleRss(server);
    const until = Date.now() + 5_000;
    let written = 0;
    let closedByServer = 0;
    const writer = async (): Promise<void> => {
      const socket = deafSocket(server.url, "");
      let closed = false;
      socket.once("close", () => {
        closed = true;
        if (Date.now() < until) closedByServer++;
      });
      while (!closed && Date.now() < until) {
        written += 1_000;
        if (!socket.write(chunk)) {
          await Promise.race([new Promise((r) => socket.once("drain", r)), new Promise((r) => socket.once("close", r)), sleep(until - Date.now())]);
        } else await sleep(0);
      }
      socket.destroy();
    };
    await Promise.all([writer(), writer()]);
    const peak = sampler.stop();
    await sleep(5_000);
    const health = await request(server.url, "/healthz");
    report({ probe: "metrics", root, withToken, singleGet: once.status, requestsWritten: written, socketsClosedByServer: closedByServer, rssMiB: { before, peak, after: rss(server) }, healthzAfter: health.status });
  } finally {
    await done();
  }
}

async function websockets(root: string, count: number, nofile: number | undefined): Promise<void> {
  const { server, done } = await serve(root, [], nofile);
  const sockets: WebSocket[] = [];
  try {
    await sleep(1_000);
    const before = rss(server);
    const sampler = sampleRss(server);
    const began = Date.now();
    const opened: Promise<string>[] = [];
    const closes = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const ws = new WebSocket(`${server.url.replace("http", "ws")}/${DB}/ws`, { handshakeTimeout: 15_000 });
      sockets.push(ws);
      opened.push(new Promise((resolve) => {
        ws.once("open", () => resolve("open"));
        ws.once("unexpected-response", (_req, res) => resolve(`http ${res.statusCode}`));
        ws.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      }));
      ws.on("error", () => {});
      ws.once("close", (code) => {
        const key = `${code} at ~${Math.round((Date.now() - began) / 1_000)} s`;
        closes.set(key, (closes.get(key) ?? 0) + 1);
      });
    }
    const outcomes = new Map<string, number>();
    for (const o of await Promise.all(opened)) outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    const openedAfter = Math.round((Date.now() - began) / 1000);
    // A normal request from a new connection, every 2 s for 20 s while the sockets are held.
    const requests: string[] = [];
    for (let t = 0; t < 10; t++) {
      const at = Math.round((Date.now() - began) / 1000);
      requests.push(`${at}s:${(await request(server.url, "/healthz", { timeoutMs: 1_500 })).status}`);
      await sleep(2_000);
    }
    const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
    const peak = sampler.stop();
    const closedByServer = Object.fromEntries(closes);
    for (const ws of sockets) ws.terminate();
    await sleep(5_000);
    report({
      probe: "websockets", root, count, nofile: nofile ?? "machine's",
      handshakes: Object.fromEntries(outcomes), handshakesDoneAfterS: openedAfter,
      healthzDuring: requests.join(" "), stillOpenAt22s: stillOpen, closedWhileHeld: closedByServer,
      rssMiB: { before, peak, after: rss(server) },
    });
  } finally {
    for (const ws of sockets) ws.terminate();
    await done();
  }
}

async function tail(root: string, args: readonly string[] = []): Promise<void> {
  const { server, done } = await serve(root, args);
  try {
    const publisher = await signToken(SECRET, { db: DB, user: "app", role: "publisher" });
    await sleep(1_000);
    const before = rss(server);
    const sampler = sampleRss(server);
    // The largest data that keeps a message's JSON under the 64 KiB default.
    await publishMany(server.url, publisher, "big", 10_000, 65_536 - 64, 15);
    const peak = sampler.stop();
    await sleep(5_000);
    report({ probe: "tail", root, args: args.join(" "), messages: 10_000, rssMiB: { before, peak, after: rss(server) } });
  } finally {
    await done();
  }
}

/** Whether a checkout has the option `name` (an older one may not). */
function knows(root: string, name: string): boolean {
  const schema = join(root, "src", "options-schema.ts");
  return existsSync(schema) && readFileSync(schema, "utf8").includes(name);
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: "string", default: "1" }, probes: { type: "string", default: "polls,metrics,websockets,tail" } } });
const roots = (positionals.length > 0 ? positionals : ["."]).map((r) => resolve(r));
const chosen = new Set(values.probes.split(","));
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const root of roots) {
    // Only a checkout that knows `--metrics-token` gets it; an older one serves /metrics to anyone.
    const acceptsToken = knows(root, "metricsToken");
    if (chosen.has("polls")) for (const n of [8, 20]) await polls(root, n);
    if (chosen.has("metrics")) for (const withToken of [false, true]) await metrics(root, withToken, acceptsToken);
    if (chosen.has("websockets")) {
      await websockets(root, 1_100, 1_024);
      await websockets(root, 2_100, undefined);
    }
    if (chosen.has("tail")) await tail(root);
    // The same with a 1 MiB tail: what of the RSS is the tail, and what the publishing left behind.
    if (chosen.has("tail-1mib") && knows(root, "tailMaxBytes")) await tail(root, ["--tail-max-bytes", "1MiB"]);
  }
}
