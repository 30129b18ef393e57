/**
 * Long-polling benchmark (not a test): tidings on the memory store and on SQLite, and a
 * minimal hand-written in-memory long-poll server, each in its own process, driven in the
 * same run by 1,000 long-polling clients spread over several processes and one publisher.
 *
 *   node --import tsx bench/longpoll/run.ts [--clients 1000] [--procs 4] [--duration 15]
 *        [--servers tidings-memory,tidings-sqlite,peer] [--scenarios rate,backlog,batch]
 *        [--backlog-broadcasts 100] [--batch-broadcasts 1000] [--per-user 5]
 *        [--rounds 1] [--pin] [--cpu-prof <dir>] [--server-node-args="--trace-gc"] [--tidings-root <checkout>]
 *        [--base-root <checkout>]   (adds servers base-memory, base-sqlite: that checkout's tidings, same run)
 *
 * Scenarios
 *   rate     every client gets 2 msg/s: 1/s on its own user:<n> channel + 1/s broadcast
 *   backlog  max throughput, one message per response: a backlog of broadcasts and user
 *            messages published at once, each client drains it one message per request
 *   batch    the same with max_messages=100 (tidings' batch extension)
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { signToken } from "../../src/auth/tokens.js";
import { Histogram } from "./histogram.js";
import { cpuMs, memoryMiB } from "./proc-stats.js";
import type { ClientStats, FromClient, FromPublisher, Scenario, Target, ToClient, ToPublisher } from "./ipc.js";

// ---- arguments ------------------------------------------------------------------------------

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (!a.startsWith("--")) continue;
  const eq = a.indexOf("=");
  if (eq > 0) {
    args.set(a.slice(2, eq), a.slice(eq + 1)); // --server-node-args=--trace-gc
    continue;
  }
  const next = process.argv[i + 1];
  if (next === undefined || next.startsWith("--")) args.set(a.slice(2), "true");
  else args.set(a.slice(2), (i++, next));
}
const CLIENTS = Number(args.get("clients") ?? 1000);
const PROCS = Number(args.get("procs") ?? 4);
const DURATION_S = Number(args.get("duration") ?? 15);
const SERVERS = (args.get("servers") ?? "tidings-memory,tidings-sqlite,peer").split(",");
const SCENARIOS = (args.get("scenarios") ?? "rate,backlog,batch").split(",");
const PIN = args.has("pin");
/** --cpu-prof <dir>: write a V8 CPU profile of each server process there (open in Chrome DevTools). */
const CPU_PROF = args.get("cpu-prof");
/** --rounds N: run every server N times per scenario, alternating the order; report medians. */
const ROUNDS = Number(args.get("rounds") ?? 1);
const BACKLOG_BROADCASTS = Number(args.get("backlog-broadcasts") ?? 100);
const BATCH_BROADCASTS = Number(args.get("batch-broadcasts") ?? 1000);
const PER_USER = Number(args.get("per-user") ?? 5);

/** --server-node-args="--trace-gc ...": extra node flags for every server (not allowed in NODE_OPTIONS). */
const NODE_ARGS = (args.get("server-node-args") ?? "").split(" ").filter(Boolean);
/** --tidings-root <dir>: run the tidings of another checkout (to compare a change). */
const ROOT = args.get("tidings-root") ?? fileURLToPath(new URL("../../", import.meta.url));
/** --base-root <dir>: servers named base-memory / base-sqlite run that checkout, to compare a change within one run. */
const BASE_ROOT = args.get("base-root");
const HERE = fileURLToPath(new URL("./", import.meta.url));
const SECRET = randomBytes(32).toString("base64url");
const DB = "bench";

// ---- processes --------------------------------------------------------------------------------

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly port: number;
}

/** With --pin the server gets CPU 0 and the load generator the others. */
function pinned(cmd: string[], role: "server" | "load"): string[] {
  if (!PIN) return cmd;
  const n = cpus().length;
  return ["taskset", "-c", role === "server" ? "0" : n > 1 ? `1-${n - 1}` : "0", ...cmd];
}

async function startServer(name: string, dataDir: string): Promise<Server> {
  const base = name.startsWith("base-");
  if (base && BASE_ROOT === undefined) throw new Error(`${name} needs --base-root <checkout>`);
  const root = base ? BASE_ROOT! : ROOT;
  const cmd =
    name === "peer"
      ? [process.execPath, "--import", "tsx", join(HERE, "peer-minimal.ts"), "0"]
      : [
          process.execPath,
          join(root, "bin/tidings.mjs"),
          "serve",
          "--port", "0",
          "--store", name.endsWith("-sqlite") ? `sqlite:${join(dataDir, `${Date.now()}.db`)}` : "memory:",
          "--data-dir", dataDir,
          "--secret", SECRET,
          "--databases", DB,
          "--log-level", "info",
        ];
  if (CPU_PROF !== undefined) cmd.splice(1, 0, "--cpu-prof", "--cpu-prof-dir", join(CPU_PROF, name));
  if (NODE_ARGS.length > 0) cmd.splice(1, 0, ...NODE_ARGS);
  const full = pinned(cmd, "server");
  const child = spawn(full[0]!, full.slice(1), { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const peer = /^listening (\d+)$/.exec(line);
      if (peer) return resolve(Number(peer[1]));
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; level?: number };
        if (entry.msg === "tidings listening") resolve(entry.port!);
        else if ((entry.level ?? 0) >= 40) process.stderr.write(`[${name}] ${line}\n`);
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  });
  // With taskset in front, the pid to measure is still the child's: taskset execs node.
  return { name, child, port };
}

/** SIGTERM (servers drain and write their CPU profile), SIGKILL if that takes over 5 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function forkTs(file: string): ChildProcess {
  const stdio: ["ignore", "inherit", "inherit", "ipc"] = ["ignore", "inherit", "inherit", "ipc"];
  if (!PIN) return fork(join(HERE, file), [], { execArgv: ["--import", "tsx"], stdio });
  // fork runs `execPath ...execArgv file`: make it `taskset -c 1-n node --import tsx file`.
  const [taskset, ...rest] = pinned([process.execPath, "--import", "tsx"], "load");
  return fork(join(HERE, file), [], { execPath: taskset!, execArgv: rest, stdio });
}

function next<T>(child: ChildProcess, accept: (m: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off("message", on);
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const on = (m: T): void => {
      if (!accept(m)) return;
      clearTimeout(timer);
      child.off("message", on);
      resolve(m);
    };
    child.on("message", on);
  });
}

// ---- one scenario -----------------------------------------------------------------------------

interface Result {
  server: string;
  scenario: string;
  round: number;
  deliveries: number;
  perSecond: number;
  p50: number;
  p99: number;
  serverCores: number;
  cpuUsPerDelivery: number;
  rss: number;
  peakRss: number;
  lost: number;
  outOfOrder: number;
  duplicates: number;
  errors: number;
  /** Answers the clients read (one per delivery when every answer carries a message), and reconnections. */
  responses: number;
  reconnects: number;
  loadCores: number;
  seconds: number;
  complete: boolean;
}

async function runScenario(server: Server, name: string, round: number): Promise<Result> {
  const target: Target = { host: "127.0.0.1", port: server.port, db: DB };
  const users = Array.from({ length: CLIENTS }, (_, i) => String(i));
  const tokens = await Promise.all(users.map((user) => signToken(SECRET, { db: DB, user, channels: ["broadcast"], ttlSeconds: 3600 })));
  const publisherToken = await signToken(SECRET, { db: DB, user: "publisher", role: "publisher", ttlSeconds: 3600 });

  const procs: ChildProcess[] = [];
  for (let p = 0; p < PROCS; p++) procs.push(forkTs("client.ts"));
  const publisher = forkTs("publisher.ts");
  const logs = (child: ChildProcess): void =>
    void child.on("message", (m: FromClient | FromPublisher) => {
      if (m.type === "log" || m.type === "error") process.stderr.write(`[${server.name}/${name}] ${m.text}\n`);
    });
  procs.forEach(logs);
  logs(publisher);

  try {
    const readies = procs.map((c) => next<FromClient>(c, (m) => m.type === "ready", 60_000, "clients to sync"));
    procs.forEach((c, p) => {
      const mine = users.filter((_, i) => i % PROCS === p);
      c.send({
        type: "start",
        target,
        maxMessages: name === "batch" ? 100 : null,
        clients: mine.map((user) => ({ user, token: tokens[Number(user)]! })),
      } satisfies ToClient);
    });
    publisher.send({ type: "init", target, token: publisherToken } satisfies ToPublisher);
    publisher.send({ type: "sync" } satisfies ToPublisher);
    await Promise.all(readies);
    const stopped = next<FromPublisher>(publisher, (m) => m.type === "syncStopped", 10_000, "sync to stop");
    publisher.send({ type: "syncStop" } satisfies ToPublisher);
    await stopped;
    // Let the last sync messages reach everyone before measuring.
    await new Promise((r) => setTimeout(r, 300));

    const scenario: Scenario =
      name === "rate"
        ? { kind: "rate", users: CLIENTS, userRate: 1, broadcastRate: 1, durationMs: DURATION_S * 1000 }
        : { kind: "backlog", users: CLIENTS, broadcasts: name === "batch" ? BATCH_BROADCASTS : BACKLOG_BROADCASTS, perUser: PER_USER };
    const loadPids = [...procs, publisher].map((c) => c.pid!);
    const cpu0 = cpuMs(server.child.pid!);
    const load0 = loadPids.reduce((s, pid) => s + cpuMs(pid), 0);
    const t0 = performance.now();
    const published = next<FromPublisher>(publisher, (m) => m.type === "published", 120_000, "the publisher");
    publisher.send({ type: "run", scenario } satisfies ToPublisher);
    const pub = (await published) as Extract<FromPublisher, { type: "published" }>;
    const dones = procs.map((c) => next<FromClient>(c, (m) => m.type === "done", 60_000, "deliveries"));
    for (const c of procs) c.send({ type: "expect", broadcasts: pub.broadcasts, perUser: pub.perUser } satisfies ToClient);
    const complete = await Promise.all(dones).then(
      () => true,
      () => false,
    );
    const wall = performance.now() - t0;
    const cpu = cpuMs(server.child.pid!) - cpu0;
    const load = loadPids.reduce((s, pid) => s + cpuMs(pid), 0) - load0;
    const mem = memoryMiB(server.child.pid!);

    const stats = await Promise.all(
      procs.map((c) => {
        const got = next<FromClient>(c, (m) => m.type === "stats", 10_000, "stats");
        c.send({ type: "report" } satisfies ToClient);
        return got as Promise<{ type: "stats" } & ClientStats>;
      }),
    );
    const latency = new Histogram();
    let deliveries = 0;
    let lost = 0;
    let outOfOrder = 0;
    let duplicates = 0;
    let errors = 0;
    let responses = 0;
    let reconnects = 0;
    let last = 0;
    for (const s of stats) {
      latency.addSparse(s.latency);
      deliveries += s.deliveries;
      lost += s.lost;
      outOfOrder += s.outOfOrder;
      duplicates += s.duplicates;
      errors += s.errors;
      responses += s.responses;
      reconnects += s.reconnects;
      last = Math.max(last, s.lastDelivery);
    }
    // Fixed rate: the offered rate over the publishing time; backlogs: until the last delivery.
    const seconds = name === "rate" ? (pub.endedAt - pub.startedAt) / 1000 : (last - pub.startedAt) / 1000;
    return {
      server: server.name,
      scenario: name,
      round,
      deliveries,
      perSecond: deliveries / seconds,
      p50: latency.quantile(0.5),
      p99: latency.quantile(0.99),
      serverCores: cpu / wall,
      cpuUsPerDelivery: (cpu * 1000) / deliveries,
      rss: mem.rss,
      peakRss: mem.peak,
      lost,
      outOfOrder,
      duplicates,
      errors,
      responses,
      reconnects,
      loadCores: load / wall,
      seconds,
      complete,
    };
  } finally {
    await Promise.all([...procs, publisher].map(stop));
  }
}

// ---- report -----------------------------------------------------------------------------------

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–");

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * One row per scenario and server: the round with the median rate (at a fixed rate: the
 * median p99). Ratios to the peer are
 * the medians of each round's own ratio (tidings and the peer run back to back within a
 * round, so drift in the machine's speed between rounds cancels out).
 */
function table(results: Result[]): string {
  const lines = [
    "| scenario | server | deliveries | deliveries/s | p50 ms | p99 ms | server CPU (cores) | CPU µs/delivery | RSS MiB (peak) | lost | out of order | dup | load gen CPU (cores) | vs peer: rate · p99 · CPU/delivery |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const rounds = Math.max(...results.map((r) => r.round)) + 1;
  for (const scenario of SCENARIOS) {
    for (const name of SERVERS) {
      const mine = results.filter((r) => r.scenario === scenario && r.server === name);
      if (mine.length === 0) continue;
      // The round shown: at a fixed rate every round has the same rate, so the median p99 decides.
      const key = (x: Result): number => (scenario === "rate" ? x.p99 : x.perSecond);
      const mid = median(mine.map(key));
      const r = mine.reduce((best, x) => (Math.abs(key(x) - mid) < Math.abs(key(best) - mid) ? x : best));
      const pairs = mine
        .map((x) => [x, results.find((p) => p.server === "peer" && p.scenario === scenario && p.round === x.round)] as const)
        .filter((pair): pair is readonly [Result, Result] => pair[1] !== undefined && name !== "peer");
      const ratio =
        pairs.length > 0
          ? `${fmt(median(pairs.map(([x, p]) => x.perSecond / p.perSecond)), 2)}× · ${fmt(median(pairs.map(([x, p]) => x.p99 / p.p99)), 2)}× · ${fmt(median(pairs.map(([x, p]) => x.cpuUsPerDelivery / p.cpuUsPerDelivery)), 2)}×`
          : "";
      const spread = rounds > 1 ? ` (${fmt(Math.min(...mine.map((x) => x.perSecond)))}–${fmt(Math.max(...mine.map((x) => x.perSecond)))})` : "";
      const lost = mine.reduce((n, x) => n + x.lost, 0);
      const late = mine.reduce((n, x) => n + x.outOfOrder, 0);
      const dup = mine.reduce((n, x) => n + x.duplicates, 0);
      lines.push(
        `| ${scenario} | ${name}${mine.every((x) => x.complete) ? "" : " (incomplete)"} | ${fmt(r.deliveries)} | ${fmt(r.perSecond)}${spread} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.serverCores, 2)} | ${fmt(r.cpuUsPerDelivery, 1)} | ${fmt(r.rss)} (${fmt(r.peakRss)}) | ${lost} | ${late} | ${dup} | ${fmt(r.loadCores, 2)} | ${ratio} |`,
      );
    }
  }
  return lines.join("\n");
}

const dataDir = mkdtempSync(join(tmpdir(), "tidings-bench-"));
const results: Result[] = [];
const started = performance.now();
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ");
console.error(
  `long-poll benchmark: ${CLIENTS} clients in ${PROCS} processes, ${cpus().length} CPUs (${cpus()[0]?.model}), node ${process.version}${PIN ? ", pinned" : ""}; load average ${load()}`,
);
try {
  for (const scenario of SCENARIOS) {
    for (let round = 0; round < ROUNDS; round++) {
      // Every other round in reverse order, so that drift favours no server.
      for (const name of round % 2 === 0 ? SERVERS : [...SERVERS].reverse()) {
        const server = await startServer(name, dataDir);
        try {
          const r = await runScenario(server, scenario, round);
          results.push(r);
          console.error(
            `${scenario}${ROUNDS > 1 ? ` round ${round + 1}` : ""} ${name}: ${fmt(r.perSecond)} deliveries/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, server ${fmt(r.serverCores, 2)} cores, lost ${r.lost}, out of order ${r.outOfOrder}, errors ${r.errors}, responses ${fmt(r.responses)}, reconnects ${r.reconnects}`,
          );
        } finally {
          await stop(server.child);
        }
      }
    }
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(table(results));
console.error(`total ${fmt((performance.now() - started) / 1000, 0)} s; load average ${load()}`);
