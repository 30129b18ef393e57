/**
 * Scale-out benchmark: three `tidings serve` processes on one shared engine (PostgreSQL,
 * Redis), driven by publisher and subscriber processes of their own.
 *
 *   node --import tsx bench/scale-out/run.ts [--engines postgres,redis] [--seconds 5]
 *        [--only throughput,latency,fanout] [--rate 1000] [--cpu-prof <dir>]
 *
 * Scenarios, per engine:
 *   - publish throughput: HTTP (POST /<db>/publish round robin over the 3 instances) and
 *     direct (a Bus in the publisher process), single messages and batches of 100; on
 *     PostgreSQL also inside application transactions (publishInTransaction) and through
 *     the SQL function <schema>.publish().
 *   - latency: 1,000 msg/s published one per request through instance A; WebSocket, SSE and
 *     long-poll subscribers on B and C; end-to-end latency from send to delivery.
 *   - fan-out: 100 WebSocket subscribers on each instance, batches of 20 published through A
 *     as fast as they are acknowledged; deliveries per second across the 3 instances.
 *
 * Each engine runs in a schema / key prefix of its own, removed at the end. Environment:
 * TIDINGS_BENCH_POSTGRES_URL, TIDINGS_BENCH_REDIS_URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Redis } from "ioredis";
import { signToken } from "../../src/auth/tokens.js";
import { Histogram } from "../longpoll/histogram.js";
import { cpuMs } from "../longpoll/proc-stats.js";
import { Worker } from "./worker.js";
import { now, type FromPublisher, type FromSubscriber, type PublishMode, type PublishResult, type SubscribeConfig, type SubscriberStats } from "./ipc.js";

const SECRET = "bench-scale-out-secret-bench-scale-out-secret";
const DB = "bench";
const CLI = fileURLToPath(new URL("../../bin/tidings.mjs", import.meta.url));
const HERE = new URL("./", import.meta.url);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const ENGINES = arg("engines", "postgres,redis").split(",");
const SECONDS = Number(arg("seconds", "5"));
const ONLY = new Set(arg("only", "throughput,latency,fanout").split(","));
const RATE = Number(arg("rate", "1000"));
/** `--cpu-prof <dir>`: a V8 CPU profile of each instance, written when it stops. */
const PROFILE = arg("cpu-prof", "");
const PG_URL = process.env.TIDINGS_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.TIDINGS_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

// ---- processes ---------------------------------------------------------------------------------

interface Instance {
  readonly url: string;
  readonly child: ChildProcess;
}

function startInstance(storeUrl: string): Promise<Instance> {
  const prof = PROFILE ? ["--cpu-prof", "--cpu-prof-dir", PROFILE] : [];
  const child = spawn(process.execPath, [...prof, CLI, "serve", "--port", "0", "--store", storeUrl, "--secret", SECRET, "--databases", DB], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "tidings listening") resolve({ url: `http://127.0.0.1:${entry.port}`, child });
      } catch {
        // not a log line
      }
    });
    child.once("exit", (code) => reject(new Error(`tidings serve exited with ${code}`)));
  });
}

// ---- engines -----------------------------------------------------------------------------------

interface EngineSetup {
  readonly name: string;
  readonly storeUrl: string;
  readonly schema?: string;
  cleanup(): Promise<void>;
}

function postgresSetup(): EngineSetup {
  const schema = `tidings_bench_${randomBytes(4).toString("hex")}`;
  const u = new URL(PG_URL);
  u.searchParams.set("schema", schema);
  u.searchParams.set("application_name", schema);
  return {
    name: "postgres",
    storeUrl: u.toString(),
    schema,
    async cleanup() {
      const sql = postgres(PG_URL, { onnotice: () => {} });
      await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      await sql.end();
    },
  };
}

function redisSetup(): EngineSetup {
  const prefix = `tidings-bench:${randomBytes(4).toString("hex")}:`;
  const u = new URL(REDIS_URL);
  u.searchParams.set("prefix", prefix);
  return {
    name: "redis",
    storeUrl: u.toString(),
    async cleanup() {
      const r = new Redis(REDIS_URL);
      let cursor = "0";
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
        if (keys.length > 0) await r.del(...keys);
        cursor = next;
      } while (cursor !== "0");
      r.disconnect();
    },
  };
}

// ---- scenarios ---------------------------------------------------------------------------------

interface Row {
  engine: string;
  scenario: string;
  messages: number;
  perSecond: number;
  unit: string;
  p50: number | null;
  p99: number | null;
  errors: number;
  serverCores: number;
  note: string;
}

const rows: Row[] = [];
let channelSeq = 0;

function instancesCpu(instances: readonly Instance[]): number {
  return instances.reduce((sum, i) => sum + cpuMs(i.child.pid!), 0);
}

async function publishWith(procs: number, mode: PublishMode, channel: string): Promise<PublishResult[]> {
  const workers = Array.from({ length: procs }, () => new Worker<FromPublisher>(new URL("publisher.ts", HERE)));
  try {
    for (const w of workers) w.send({ type: "run", db: DB, channel, mode });
    return await Promise.all(workers.map(async (w) => (await w.next("done")).result));
  } finally {
    for (const w of workers) w.kill();
  }
}

async function throughput(engine: string, instances: readonly Instance[], scenario: string, procs: number, mode: PublishMode): Promise<void> {
  const channel = `tp-${++channelSeq}`;
  const cpu0 = instancesCpu(instances);
  const t0 = now();
  const results = await publishWith(procs, mode, channel);
  const elapsed = Math.max(...results.map((r) => r.endedAt)) - Math.min(...results.map((r) => r.startedAt));
  const cpu = instancesCpu(instances) - cpu0;
  const messages = results.reduce((s, r) => s + r.messages, 0);
  const errors = results.reduce((s, r) => s + r.errors, 0);
  const firstError = results.find((r) => r.firstError)?.firstError ?? "";
  rows.push({
    engine,
    scenario,
    messages,
    perSecond: messages / (elapsed / 1000),
    unit: "msg/s",
    p50: null,
    p99: null,
    errors,
    serverCores: cpu / (now() - t0),
    note: firstError.slice(0, 80),
  });
  console.error(`  ${scenario}: ${Math.round(messages / (elapsed / 1000))} msg/s${errors ? ` (${errors} errors: ${firstError})` : ""}`);
}

async function subscribe(configs: SubscribeConfig[]): Promise<Worker<FromSubscriber>[]> {
  const subs = configs.map(() => new Worker<FromSubscriber>(new URL("subscriber.ts", HERE)));
  subs.forEach((s, i) => s.send({ type: "start", config: configs[i] }));
  await Promise.all(subs.map((s) => s.next("ready")));
  return subs;
}

/** Waits until every connection has `perConnection` messages (or `timeoutMs`), then collects stats. */
async function collect(subs: Worker<FromSubscriber>[], perConnection: number, timeoutMs = 30_000): Promise<SubscriberStats[]> {
  for (const s of subs) s.send({ type: "expect", perConnection });
  await Promise.all(subs.map((s) => s.next("reached", timeoutMs).catch(() => undefined)));
  for (const s of subs) s.send({ type: "report" });
  const stats = await Promise.all(subs.map((s) => s.next("stats")));
  for (const s of subs) s.kill();
  return stats;
}

async function latency(engine: string, instances: readonly Instance[], token: string, subToken: string, seconds: number): Promise<void> {
  const channel = `lat-${++channelSeq}`;
  const [a, b, c] = instances.map((i) => i.url) as [string, string, string];
  const subs = await subscribe(
    (["websocket", "sse", "longpoll"] as const).map((transport) => ({ urls: [b, c], db: DB, token: subToken, channel, transport, connections: 2 })),
  );
  const cpu0 = instancesCpu(instances);
  const t0 = now();
  const [result] = await publishWith(1, { kind: "rate", url: a, token, rate: RATE, batch: 1, durationMs: seconds * 1000 }, channel);
  const stats = await collect(subs, result!.messages);
  const cpu = instancesCpu(instances) - cpu0;
  const all = new Histogram();
  for (const s of stats) all.addSparse(s.latency);
  const lost = stats.reduce((n, s) => n + (s.minPerConnection < result!.messages ? 1 : 0), 0);
  const disorder = stats.reduce((n, s) => n + s.outOfOrder, 0);
  const per = stats
    .map((s) => {
      const h = new Histogram();
      h.addSparse(s.latency);
      return `${s.transport} p50 ${h.quantile(0.5).toFixed(1)} / p99 ${h.quantile(0.99).toFixed(1)}`;
    })
    .join("; ");
  rows.push({
    engine,
    scenario: `latency A→B,C at ${RATE.toLocaleString("en-US")} msg/s`,
    messages: all.total,
    perSecond: result!.messages / ((result!.endedAt - result!.startedAt) / 1000),
    unit: "msg/s published (deliveries after a 1 s warm-up counted)",
    p50: all.quantile(0.5),
    p99: all.quantile(0.99),
    errors: result!.errors + lost + disorder,
    serverCores: cpu / (now() - t0),
    note: per,
  });
  console.error(`  latency: p50 ${all.quantile(0.5)} ms, p99 ${all.quantile(0.99)} ms (${per})`);
}

async function fanout(engine: string, instances: readonly Instance[], token: string, subToken: string, seconds: number): Promise<void> {
  const channel = `fan-${++channelSeq}`;
  const perInstance = 100;
  const subs = await subscribe(instances.map((i) => ({ urls: [i.url], db: DB, token: subToken, channel, transport: "websocket" as const, connections: perInstance })));
  const cpu0 = instancesCpu(instances);
  const t0 = now();
  const [result] = await publishWith(1, { kind: "http", urls: [instances[0]!.url], token, concurrency: 2, batch: 20, durationMs: seconds * 1000 }, channel);
  const stats = await collect(subs, result!.messages, 60_000);
  const cpu = instancesCpu(instances) - cpu0;
  const deliveries = stats.reduce((n, s) => n + s.deliveries, 0);
  const end = Math.max(...stats.map((s) => s.lastDelivery));
  const all = new Histogram();
  for (const s of stats) all.addSparse(s.latency);
  const complete = stats.every((s) => s.minPerConnection === result!.messages);
  rows.push({
    engine,
    scenario: `fan-out: ${instances.length}×${perInstance} WebSocket subscribers`,
    messages: deliveries,
    perSecond: deliveries / ((end - result!.startedAt) / 1000),
    unit: "deliveries/s",
    p50: all.quantile(0.5),
    p99: all.quantile(0.99),
    errors: result!.errors + stats.reduce((n, s) => n + s.outOfOrder + s.closed, 0) + (complete ? 0 : 1),
    serverCores: cpu / (now() - t0),
    note: `${result!.messages} messages published (${Math.round(result!.messages / ((result!.endedAt - result!.startedAt) / 1000))}/s)${complete ? "" : "; some subscribers incomplete"}`,
  });
  console.error(`  fan-out: ${Math.round(deliveries / ((end - result!.startedAt) / 1000))} deliveries/s, p99 ${all.quantile(0.99)} ms`);
}

async function benchEngine(setup: EngineSetup): Promise<void> {
  console.error(`${setup.name}: starting 3 instances`);
  const instances = await Promise.all([0, 1, 2].map(() => startInstance(setup.storeUrl)));
  const [token, subToken] = await Promise.all([
    signToken(SECRET, { db: DB, user: "bench-publisher", role: "publisher" }),
    signToken(SECRET, { db: DB, user: "bench-subscriber", channels: ["*"] }),
  ]);
  const urls = instances.map((i) => i.url);
  const ms = SECONDS * 1000;
  const e = setup.name;
  try {
    if (ONLY.has("throughput")) await throughputs(e, instances, setup, token, urls, ms);
    if (ONLY.has("latency")) await latency(e, instances, token, subToken, SECONDS * 2);
    if (ONLY.has("fanout")) await fanout(e, instances, token, subToken, Math.max(2, Math.round(SECONDS / 2)));
  } finally {
    for (const i of instances) i.child.kill("SIGTERM");
    await Promise.all(instances.map((i) => new Promise((r) => (i.child.exitCode !== null ? r(null) : i.child.once("exit", r)))));
    await setup.cleanup();
  }
}

async function throughputs(e: string, instances: readonly Instance[], setup: EngineSetup, token: string, urls: string[], ms: number): Promise<void> {
  {
    await throughput(e, instances, "HTTP, 1 message per request", 2, { kind: "http", urls, token, concurrency: 16, batch: 1, durationMs: ms });
    await throughput(e, instances, "HTTP, batches of 100", 2, { kind: "http", urls, token, concurrency: 4, batch: 100, durationMs: ms });
    await throughput(e, instances, "direct (bus.publish), 1 message", 1, { kind: "direct", storeUrl: setup.storeUrl, concurrency: 32, batch: 1, durationMs: ms });
    await throughput(e, instances, "direct, 1 message, write-combined (prototype)", 1, { kind: "direct", storeUrl: setup.storeUrl, concurrency: 32, batch: 1, durationMs: ms, combine: true });
    await throughput(e, instances, "direct (bus.publishMany), batches of 100", 1, { kind: "direct", storeUrl: setup.storeUrl, concurrency: 8, batch: 100, durationMs: ms });
    if (setup.schema !== undefined) {
      const pg = { storeUrl: setup.storeUrl, pgUrl: PG_URL };
      await throughput(e, instances, "transactional (publishInTransaction), 1 message", 1, { kind: "transactional", ...pg, concurrency: 32, batch: 1, durationMs: ms });
      await throughput(e, instances, "transactional, batches of 100", 1, { kind: "transactional", ...pg, concurrency: 8, batch: 100, durationMs: ms });
      await throughput(e, instances, "SQL SELECT <schema>.publish(), 1 message", 1, { kind: "sql", pgUrl: PG_URL, schema: setup.schema, concurrency: 32, durationMs: ms });
    }
  }
}

const fmt = (n: number | null, digits = 0): string =>
  n === null || Number.isNaN(n) ? "" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const started = new Date();
const load0 = loadavg()[0]!;
for (const name of ENGINES) {
  const setup = name === "postgres" ? postgresSetup() : name === "redis" ? redisSetup() : null;
  if (setup === null) throw new Error(`unknown engine ${name}`);
  await benchEngine(setup);
}
console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}; load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end; ${started.toISOString()}; --seconds ${SECONDS}`);
console.log("");
console.log("| engine | scenario | count | rate | p50 ms | p99 ms | errors | instances' CPU (cores) | notes |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---|");
for (const r of rows) {
  console.log(
    `| ${r.engine} | ${r.scenario} | ${fmt(r.messages)} | ${fmt(r.perSecond)} ${r.unit} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${r.errors} | ${fmt(r.serverCores, 2)} | ${r.note} |`,
  );
}
process.exit(0);
