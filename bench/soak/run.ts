/**
 * Soak (not a test): one `tidings serve` (the real CLI, SQLite) on loopback, under steady
 * publishing, with thousands of clients spread over WebSocket (rohrpost), SSE and Tryton
 * long-polling in client processes of their own. Clients leave now and then and resume
 * from their cursor. Every interval the runner records the server's RSS, open file
 * descriptors and CPU (from /proc), its JS heap (its /metrics) and the p99 delivery
 * latency. At the end the runner reads the store's log: every acknowledged publish must be
 * in it, and every client must hold its channel's log from its first message on — nothing
 * missing, nothing twice, in order.
 *
 *   node --import tsx bench/soak/run.ts [--duration 600] [--clients 5000] [--rate 50]
 *        [--channels 50] [--churn 60] [--pause 3] [--interval 10] [--procs-per-transport 2]
 *        [--out docs/soak.json] [--png docs/soak.png]
 *
 * --duration, --churn, --pause, --interval are seconds. Clients are spread round robin over
 * the transports and the channels; --rate is messages per second over all channels.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { signToken } from "../../src/auth/tokens.js";
import { Histogram } from "../longpoll/histogram.js";
import { cpuMs, memoryMiB } from "../longpoll/proc-stats.js";
import { openStoreUrl } from "../../src/stores/open-store.js";
import { Worker } from "../scale-out/worker.js";
import { startServe, stopProcess, type ServeProcess } from "../serve-process.js";
import { chartSvg, writePng } from "./chart.js";
import type { Anomaly, ClientsSample, FromClients, FromPublisher, Transport } from "./ipc.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const DURATION_S = Number(arg("duration", "600"));
const CLIENTS = Number(arg("clients", "5000"));
const RATE = Number(arg("rate", "50"));
const CHANNELS = Number(arg("channels", "50"));
const CHURN_S = Number(arg("churn", "60"));
const PAUSE_S = Number(arg("pause", "3"));
const INTERVAL_S = Number(arg("interval", "10"));
const PROCS_PER_TRANSPORT = Number(arg("procs-per-transport", "2"));
const OUT = arg("out", "");
const PNG = arg("png", "");
const TRANSPORTS: readonly Transport[] = ["websocket", "sse", "longpoll"];

const HERE = new URL("./", import.meta.url);
const SECRET = randomBytes(32).toString("base64url");
const DB = "soak";
const METRICS_TOKEN = randomBytes(24).toString("base64url");

// ---- the server --------------------------------------------------------------------------------

function startServer(dataDir: string, store: string): Promise<ServeProcess> {
  const limit = String(CLIENTS * 2 + 100);
  return startServe(["--store", store, "--data-dir", dataDir, "--secret", SECRET, "--databases", DB, "--metrics-token", METRICS_TOKEN,
    "--max-connections", limit, "--max-connections-per-address", limit, "--log-level", "warn"]);
}

/** The position in the log of a message id (`<epoch>:<zero-padded position>`). */
function position(id: string): number {
  return Number(id.slice(id.indexOf(":") + 1));
}

/** The store's log of each channel, as positions, read through a connection of the runner's own. */
async function readLog(storeUrl: string, channels: readonly string[]): Promise<Record<string, number[]>> {
  const store = await openStoreUrl(storeUrl);
  await store.open();
  try {
    const out: Record<string, number[]> = Object.fromEntries(channels.map((c) => [c, []]));
    for (let after: string | null = null; ; ) {
      const page = await store.read(DB, { after, channels, limit: 1000 });
      if (page.messages.length === 0) return out;
      for (const m of page.messages) out[m.channel]!.push(position(m.id));
      after = page.messages.at(-1)!.id;
    }
  } finally {
    await store.close();
  }
}

/** The server's V8 heap in use and memory outside it (Buffers), MiB, from its own /metrics. */
async function heapMiB(url: string): Promise<{ heapUsed: number; external: number }> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  const value = (name: string): number => Number(new RegExp(`^tidings_process_${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { heapUsed: value("nodejs_heap_size_used_bytes"), external: value("nodejs_external_memory_bytes") };
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

// ---- samples -----------------------------------------------------------------------------------

interface Point {
  /** Seconds since publishing started. */
  readonly t: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
  readonly fds: number;
  /** Server CPU over the interval, in cores. */
  readonly serverCores: number;
  readonly deliveriesPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly connected: number;
  readonly resumesPerSecond: number;
  readonly loadAverage: number;
}

type Totals = Omit<ClientsSample, "transport" | "latency" | "anomalies" | "connected">;
const ZERO: Totals = { deliveries: 0, caughtUp: 0, duplicates: 0, disorder: 0, lost: 0, gaps: 0, resumes: 0, failures: 0 };

function add(a: Totals, b: Totals): Totals {
  const out = { ...a };
  for (const k of Object.keys(ZERO) as Array<keyof Totals>) out[k] = a[k] + b[k];
  return out;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–";

// ---- the run -----------------------------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), "tidings-soak-"));
const started = new Date();
console.error(
  `soak: ${CLIENTS} clients (${TRANSPORTS.join(", ")}), ${RATE} msg/s over ${CHANNELS} channels, churn every ~${CHURN_S} s with pauses up to ${PAUSE_S} s, ${DURATION_S} s, SQLite; ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}`,
);
const storeUrl = `sqlite:${join(dataDir, "tidings.db")}`;
const server = await startServer(dataDir, storeUrl);
const pid = server.child.pid!;
const workers: Worker<FromClients>[] = [];
const publisher = new Worker<FromPublisher>(new URL("publisher.ts", HERE));
const anomalies: Anomaly[] = [];
const points: Point[] = [];
const perTransport = new Map<Transport, Totals>(TRANSPORTS.map((t) => [t, ZERO]));
const allLatency = new Histogram();
let finalBehind = 0;
/** Acknowledged publishes missing from the store's log. */
let unlogged: string[] = [];
let publishedSummary: Extract<FromPublisher, { type: "stopped" }> | null = null;
try {
  const channels = Array.from({ length: CHANNELS }, (_, k) => `soak:${k}`);
  const specs = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => ({
      user: `u${i}`,
      token: await signToken(SECRET, { db: DB, user: `u${i}`, channels: ["soak:*"], ttlSeconds: DURATION_S + 3600 }),
      channel: channels[i % CHANNELS]!,
      transport: TRANSPORTS[i % TRANSPORTS.length]!,
    })),
  );
  for (const transport of TRANSPORTS) {
    const mine = specs.filter((s) => s.transport === transport);
    for (let p = 0; p < PROCS_PER_TRANSPORT; p++) {
      const w = new Worker<FromClients>(new URL("clients.ts", HERE));
      workers.push(w);
      w.send({
        type: "start",
        config: {
          url: server.url,
          db: DB,
          transport,
          clients: mine.filter((_, i) => i % PROCS_PER_TRANSPORT === p).map(({ user, token, channel }) => ({ user, token, channel })),
          churnMs: CHURN_S * 1000,
          pauseMs: PAUSE_S * 1000,
        },
      });
    }
  }
  const ready = await Promise.all(workers.map((w) => w.next("ready", 300_000)));
  console.error(`${ready.reduce((n, r) => n + r.connected, 0)} clients connected; server RSS ${fmt(memoryMiB(pid).rss)} MiB, ${openFds(pid)} fds`);

  const publisherToken = await signToken(SECRET, { db: DB, user: "publisher", role: "publisher", ttlSeconds: DURATION_S + 3600 });
  publisher.send({ type: "start", config: { url: server.url, db: DB, token: publisherToken, channels, rate: RATE } });
  const t0 = performance.now();
  let cpu0 = cpuMs(pid);
  let tPrev = t0;
  let before: Totals = ZERO;
  for (let k = 1; k * INTERVAL_S <= DURATION_S; k++) {
    await new Promise((r) => setTimeout(r, t0 + k * INTERVAL_S * 1000 - performance.now()));
    for (const w of workers) w.send({ type: "sample" });
    const samples = await Promise.all(workers.map((w) => w.next("sample", 60_000)));
    const tNow = performance.now();
    const cpu = cpuMs(pid);
    const latency = new Histogram();
    let totals = ZERO;
    for (const s of samples) {
      latency.addSparse(s.latency);
      allLatency.addSparse(s.latency);
      totals = add(totals, s);
      anomalies.push(...s.anomalies);
    }
    const seconds = (tNow - tPrev) / 1000;
    const heap = await heapMiB(server.url).catch(() => ({ heapUsed: NaN, external: NaN }));
    const point: Point = {
      t: Math.round((tNow - t0) / 1000),
      rssMiB: memoryMiB(pid).rss,
      heapUsedMiB: heap.heapUsed,
      externalMiB: heap.external,
      fds: openFds(pid),
      serverCores: (cpu - cpu0) / (tNow - tPrev),
      deliveriesPerSecond: (totals.deliveries - before.deliveries) / seconds,
      p50: latency.quantile(0.5),
      p99: latency.quantile(0.99),
      connected: samples.reduce((n, s) => n + s.connected, 0),
      resumesPerSecond: (totals.resumes - before.resumes) / seconds,
      loadAverage: loadavg()[0]!,
    };
    points.push(point);
    console.error(
      `${point.t} s: RSS ${fmt(point.rssMiB)} MiB (heap ${fmt(point.heapUsedMiB)}, external ${fmt(point.externalMiB)}), ${point.fds} fds, ${fmt(point.serverCores, 2)} cores, ${fmt(point.deliveriesPerSecond)} deliveries/s, p50 ${fmt(point.p50, 1)} / p99 ${fmt(point.p99, 1)} ms, ${point.connected} connected, ${fmt(point.resumesPerSecond, 1)} resumes/s; dup ${totals.duplicates}, lost ${totals.lost}, disorder ${totals.disorder}, load ${point.loadAverage.toFixed(1)}`,
    );
    before = totals;
    tPrev = tNow;
    cpu0 = cpu;
  }

  publisher.send({ type: "stop" });
  publishedSummary = await publisher.next("stopped", 120_000);
  const log = await readLog(storeUrl, channels);
  const logged = new Set(Object.values(log).flat());
  unlogged = publishedSummary.acked.filter((id) => !logged.has(position(id)));
  for (const w of workers) w.send({ type: "finish", log, timeoutMs: 60_000 });
  const finals = await Promise.all(workers.map((w) => w.next("finished", 120_000)));
  for (const f of finals) {
    perTransport.set(f.transport, add(perTransport.get(f.transport)!, f));
    allLatency.addSparse(f.latency);
    anomalies.push(...f.anomalies);
    finalBehind += f.behind;
  }
} finally {
  for (const w of workers) w.kill();
  publisher.kill();
  await stopProcess(server.child);
  rmSync(dataDir, { recursive: true, force: true });
}

// ---- report ------------------------------------------------------------------------------------

const first = points[0]!;
const last = points.at(-1)!;
const total = [...perTransport.values()].reduce(add, ZERO);
const result = {
  started: started.toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}`,
  command: `node --import tsx bench/soak/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
  settings: { durationSeconds: DURATION_S, clients: CLIENTS, rate: RATE, channels: CHANNELS, churnSeconds: CHURN_S, pauseSeconds: PAUSE_S, intervalSeconds: INTERVAL_S },
  published: publishedSummary && { ...publishedSummary, acked: publishedSummary.acked.length },
  start: first,
  end: last,
  p99Overall: allLatency.quantile(0.99),
  perTransport: Object.fromEntries(perTransport),
  total,
  behindAtEnd: finalBehind,
  acknowledgedNotInLog: unlogged,
  anomalies: anomalies.slice(0, 50),
  points,
};
if (OUT) writeFileSync(OUT, `${JSON.stringify(result, null, 1)}\n`);
if (PNG) {
  const minutes = (p: Point): number => p.t / 60;
  const svg = chartSvg(`tidings soak: ${fmt(CLIENTS)} clients (WebSocket, SSE, long-poll), ${RATE} msg/s, ${fmt(DURATION_S / 60, 1)} min, SQLite`, [
    { title: "server RSS", unit: "MiB", points: points.map((p) => [minutes(p), p.rssMiB]) },
    { title: "server JS heap in use", unit: "MiB", points: points.map((p) => [minutes(p), p.heapUsedMiB]) },
    { title: "server open file descriptors", unit: "count", points: points.map((p) => [minutes(p), p.fds]) },
    { title: "p99 delivery latency", unit: "ms", points: points.map((p) => [minutes(p), p.p99]) },
    { title: "deliveries", unit: "per second", points: points.map((p) => [minutes(p), p.deliveriesPerSecond]) },
  ]);
  await writePng(svg, PNG);
}

console.log(`| | start (${first.t} s) | end (${last.t} s) |`);
console.log("|---|---:|---:|");
console.log(`| server RSS, MiB | ${fmt(first.rssMiB)} | ${fmt(last.rssMiB)} |`);
console.log(`| server JS heap in use / external, MiB | ${fmt(first.heapUsedMiB)} / ${fmt(first.externalMiB)} | ${fmt(last.heapUsedMiB)} / ${fmt(last.externalMiB)} |`);
console.log(`| server open fds | ${first.fds} | ${last.fds} |`);
console.log(`| p50 / p99 delivery latency, ms | ${fmt(first.p50, 1)} / ${fmt(first.p99, 1)} | ${fmt(last.p50, 1)} / ${fmt(last.p99, 1)} |`);
console.log(`| deliveries/s | ${fmt(first.deliveriesPerSecond)} | ${fmt(last.deliveriesPerSecond)} |`);
console.log(`| server CPU, cores | ${fmt(first.serverCores, 2)} | ${fmt(last.serverCores, 2)} |`);
console.log(`| clients connected | ${first.connected} | ${last.connected} |`);
console.log("");
console.log("| transport | deliveries | caught up after resume | resumes | failures | duplicates | lost | out of order | gap signals |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const [t, s] of perTransport) {
  console.log(`| ${t} | ${fmt(s.deliveries)} | ${fmt(s.caughtUp)} | ${fmt(s.resumes)} | ${s.failures} | ${s.duplicates} | ${s.lost} | ${s.disorder} | ${s.gaps} |`);
}
console.log("");
console.log(
  `published ${fmt(publishedSummary?.published ?? 0)} (${publishedSummary?.errors ?? "?"} refused or unanswered${publishedSummary?.firstError ? `: ${publishedSummary.firstError}` : ""}; ${publishedSummary?.skipped ?? "?"} ticks skipped while the server was behind); acknowledged but not in the log: ${unlogged.length}; p99 over the run ${fmt(result.p99Overall, 1)} ms; clients behind at the end ${finalBehind}; load average ${loadavg()[0]!.toFixed(1)}`,
);
if (anomalies.length > 0) console.error(`anomalies (first ${Math.min(10, anomalies.length)}):\n${anomalies.slice(0, 10).map((a) => JSON.stringify(a)).join("\n")}`);
process.exit(total.duplicates + total.lost + total.disorder + finalBehind + unlogged.length === 0 ? 0 : 1);
