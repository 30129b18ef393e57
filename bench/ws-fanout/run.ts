/**
 * WebSocket fan-out benchmark: tidings against a hand-written broadcast loop on raw `ws`
 * and Socket.IO 4.8 room broadcast, in one run, same machine, same message size. Servers,
 * subscribers and the publisher are separate processes; subscribers use a minimal raw
 * socket client so that they cost less than the servers.
 *
 *   node --import tsx bench/ws-fanout/run.ts [--subscribers 1000,10000] [--bytes 100] [--peers ws,socket.io,tidings] [--tsx] [--pin] [--cpu-prof <dir>]
 *
 * The servers run on plain node, as `npm start` runs tidings: each peer's entry is bundled
 * with esbuild, and tidings' own modules are the compiled tree in dist/ (`npm run build`).
 * `--tsx` runs the TypeScript sources under the tsx loader instead (about 35 MB more RSS
 * per process).
 *
 * Per server and subscriber count: RSS per connection, latency at a fixed delivery rate,
 * deliveries/s with a bounded window of messages in flight, server CPU per delivery, and
 * messages lost (must be zero). Prints a table, then the JSON.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { fileURLToPath } from "node:url";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { signToken } from "../../src/auth/tokens.js";
import { Histogram } from "./histogram.js";
import { BENCH_SECRET, type PeerKind } from "./protocols.js";

const here = dirname(fileURLToPath(import.meta.url));
const EXEC_ARGV = ["--import", "tsx", "--expose-gc"];
// Inside node_modules, so that the bundles resolve their packages from the repository's.
const BUILD_DIR = join(here, "../../node_modules/.cache/tidings-bench");

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const SUBSCRIBERS = arg("subscribers", "1000,10000").split(",").map(Number);
const PEERS = arg("peers", "ws,socket.io,tidings").split(",") as PeerKind[];
const MESSAGE_BYTES = Number(arg("bytes", "100"));
const SUBSCRIBER_PROCESSES = Number(arg("procs", "2"));
/** Latency is measured at this many deliveries per second: 1,000 × 50 msg/s, 10,000 × 5 msg/s. */
const LATENCY_DELIVERIES_PER_S = Number(arg("latency-rate", "50000"));
const LATENCY_MS = Number(arg("latency-ms", "5000"));
const WARMUP_MS = 1000;
const MEASURE_MS = Number(arg("measure-ms", "4000"));
/**
 * Messages in flight beyond what the slowest subscriber has received: about 100,000
 * deliveries, so that the window never caps the rate (the slowest subscriber reports every
 * 10 ms) yet a socket never holds more than a few dozen kilobytes unsent.
 */
const windowFor = (subscribers: number): number => Number(arg("window", "0")) || Math.min(128, Math.max(8, Math.round(100_000 / subscribers)));
const DRAIN_TIMEOUT_MS = 15_000;
const COMPILED = !process.argv.includes("--tsx");
/** A directory for a V8 CPU profile of each server process. */
const CPU_PROF = arg("cpu-prof", "");
/** Server on CPU 0, subscribers and publisher on the others (needs `taskset`). */
const PIN = process.argv.includes("--pin");
const LOAD_CPUS = (() => {
  const n = availableParallelism();
  return n > 2 ? `1-${n - 1}` : "1";
})();

/** Moves every thread of a process to the given CPUs. */
function pin(child: Child, cpus: string): void {
  if (PIN && child.proc.pid !== undefined) execFileSync("taskset", ["-a", "-cp", cpus, String(child.proc.pid)], { stdio: "ignore" });
}

const PEER_FILES: Record<PeerKind, string> = {
  ws: "peers/raw-ws.ts",
  "socket.io": "peers/socketio.ts",
  tidings: "peers/tidings.ts",
};

/** A child process spoken to over IPC. */
class Child extends EventEmitter {
  readonly proc: ChildProcess;

  constructor(file: string, execArgv = EXEC_ARGV) {
    super();
    this.proc = fork(file.startsWith("/") ? file : join(here, file), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.proc.on("message", (m: { type: string }) => {
      if (m.type === "error") console.error(`${file}:`, m);
      this.emit(m.type, m);
    });
  }

  send(m: unknown): void {
    this.proc.send(m as object);
  }

  async next<T>(type: string, timeoutMs = 120_000): Promise<T> {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), timeoutMs);
    try {
      const [m] = await once(this, type, { signal: ac.signal });
      return m as T;
    } finally {
      clearTimeout(t);
    }
  }

  async ask<T>(cmd: unknown, type: string): Promise<T> {
    const reply = this.next<T>(type);
    this.send(cmd);
    return reply;
  }

  /** Asks the process to exit (so that a CPU profile gets written), then kills it. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, "exit").then(() => undefined);
    if (this.proc.connected) this.send({ cmd: "exit" });
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }
}

interface Progress {
  total: number;
  min: number;
  closed: number;
}

interface Result {
  peer: PeerKind;
  subscribers: number;
  connectSeconds: number;
  rssBaseMB: number;
  rssMB: number;
  rssPerConnKB: number;
  latency: { perSecond: number; p50: number; p99: number; max: number; lost: number; serverCores: number; subscriberCores: number };
  throughput: { window: number; deliveriesPerSecond: number; serverCpuMicrosPerDelivery: number; clientCpuMicrosPerDelivery: number; lost: number };
  closedConnections: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SRC_DIR = join(here, "../../src/");
const DIST_DIR = join(here, "../../dist/");

/** Bundles leave tidings' modules out: they are imported from dist/, the tree `npm start` runs. */
const tidingsFromDist = {
  name: "tidings-from-dist",
  setup(b: { onResolve(o: { filter: RegExp }, f: (a: { path: string; resolveDir: string }) => { path: string; external: boolean } | undefined): void }) {
    b.onResolve({ filter: /\/src\// }, (a) => {
      const path = join(a.resolveDir, a.path);
      if (!path.startsWith(SRC_DIR)) return undefined;
      return { path: join(DIST_DIR, path.slice(SRC_DIR.length)), external: true };
    });
  },
};

/** The server's entry point: a bundle on plain node, or the TypeScript file under tsx. */
async function serverEntry(peer: PeerKind): Promise<{ file: string; execArgv: string[] }> {
  const profile = CPU_PROF === "" ? [] : ["--cpu-prof", "--cpu-prof-dir", CPU_PROF];
  if (!COMPILED) return { file: PEER_FILES[peer], execArgv: [...EXEC_ARGV, ...profile] };
  const { build } = await import("esbuild");
  const outfile = join(BUILD_DIR, `${peer}.mjs`);
  await build({
    entryPoints: [join(here, PEER_FILES[peer])],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    plugins: [tidingsFromDist],
    outfile,
    logLevel: "error",
  });
  return { file: outfile, execArgv: ["--expose-gc", ...profile] };
}

async function runOne(peer: PeerKind, n: number): Promise<Result> {
  const entry = await serverEntry(peer);
  const server = new Child(entry.file, entry.execArgv);
  const subs: Child[] = [];
  let publisher: Child | null = null;
  try {
    const { port } = await server.next<{ port: number }>("listening");
    pin(server, "0");
    const mem0 = await server.ask<{ rss: number }>({ cmd: "mem" }, "mem");
    const subToken = await signToken(BENCH_SECRET, { db: "bench", user: "subscriber" });
    const pubToken = await signToken(BENCH_SECRET, { db: "bench", user: "publisher", role: "publisher" });

    // Subscribers, connected and subscribed.
    const t0 = performance.now();
    const progress: Progress[] = [];
    for (let i = 0; i < SUBSCRIBER_PROCESSES; i++) {
      const count = Math.floor(n / SUBSCRIBER_PROCESSES) + (i < n % SUBSCRIBER_PROCESSES ? 1 : 0);
      const sub = new Child("subscriber.ts");
      pin(sub, LOAD_CPUS);
      progress.push({ total: 0, min: 0, closed: 0 });
      sub.on("progress", (p: Progress) => (progress[i] = p));
      subs.push(sub);
      sub.send({ port, kind: peer, count, token: subToken });
    }
    await Promise.all(subs.map((s) => s.next("ready")));
    const connectSeconds = (performance.now() - t0) / 1000;
    await sleep(500);
    const mem1 = await server.ask<{ rss: number }>({ cmd: "mem" }, "mem");
    if (process.env.BENCH_DEBUG) console.error(peer, n, { mem0, mem1 });

    publisher = new Child("publisher.ts");
    pin(publisher, LOAD_CPUS);
    publisher.send({ port, kind: peer, token: pubToken, messageBytes: MESSAGE_BYTES });
    await publisher.next("ready");
    const pub = publisher;

    const totals = () => progress.reduce((s, p) => s + p.total, 0);
    const minimum = () => Math.min(...progress.map((p) => p.min));
    const closed = () => progress.reduce((s, p) => s + p.closed, 0);
    const phase = (latency: boolean) => {
      for (const s of subs) s.send({ cmd: "phase", latency });
      for (let i = 0; i < progress.length; i++) progress[i] = { total: 0, min: 0, closed: progress[i]!.closed };
    };
    /** Waits until every subscriber has every message sent (or the timeout). */
    const drain = async (expected: number): Promise<void> => {
      const deadline = Date.now() + DRAIN_TIMEOUT_MS;
      while (totals() < expected && Date.now() < deadline) await sleep(25);
      await sleep(60); // one more round of progress reports
    };
    const reports = () => Promise.all(subs.map((s) => s.ask<{ total: number; hist: ReturnType<Histogram["toJSON"]>; cpuMicros: number }>({ cmd: "report" }, "report")));

    // Latency at a fixed rate.
    const perSecond = Math.max(1, Math.round(LATENCY_DELIVERIES_PER_S / n));
    phase(true);
    await sleep(100);
    const lcpu0 = await server.ask<{ micros: number }>({ cmd: "cpu" }, "cpu");
    const lw0 = performance.now();
    pub.send({ cmd: "rate", perSecond, durationMs: LATENCY_MS });
    const { sent: latencySent } = await pub.next<{ sent: number }>("done", LATENCY_MS + 60_000);
    await drain(latencySent * n);
    const lcpu1 = await server.ask<{ micros: number }>({ cmd: "cpu" }, "cpu");
    const latencyWallMs = performance.now() - lw0;
    const latencyReports = await reports();
    const hist = new Histogram();
    for (const r of latencyReports) hist.merge(r.hist);
    const latencyReceived = latencyReports.reduce((s, r) => s + r.total, 0);

    // Throughput: the publisher may run a window of messages ahead of the slowest subscriber.
    const window = windowFor(n);
    phase(false);
    pub.send({ cmd: "reset" });
    await sleep(100);
    let allowed = 0;
    let open = true;
    const raise = (): void => {
      if (!open) return;
      const upTo = minimum() + window;
      if (upTo > allowed) {
        allowed = upTo;
        pub.send({ cmd: "allow", upTo });
      }
    };
    const timer = setInterval(raise, 5);
    raise();
    await sleep(WARMUP_MS);
    const cpu0 = await server.ask<{ micros: number }>({ cmd: "cpu" }, "cpu");
    const d0 = totals();
    const w0 = performance.now();
    await sleep(MEASURE_MS);
    const cpu1 = await server.ask<{ micros: number }>({ cmd: "cpu" }, "cpu");
    const d1 = totals();
    const w1 = performance.now();
    open = false;
    clearInterval(timer);
    const { sent: throughputSent } = await pub.ask<{ sent: number }>({ cmd: "report" }, "sent");
    await drain(throughputSent * n);
    const tpReports = await reports();
    const tpReceived = tpReports.reduce((s, r) => s + r.total, 0);
    const clientCpu = tpReports.reduce((s, r) => s + r.cpuMicros, 0);
    const delivered = d1 - d0;

    return {
      peer,
      subscribers: n,
      connectSeconds: round(connectSeconds, 1),
      rssBaseMB: round(mem0.rss / 2 ** 20, 1),
      rssMB: round(mem1.rss / 2 ** 20, 1),
      rssPerConnKB: round((mem1.rss - mem0.rss) / n / 1024, 2),
      latency: {
        perSecond,
        p50: round(hist.quantile(0.5), 2),
        p99: round(hist.quantile(0.99), 2),
        max: round(hist.quantile(1), 2),
        lost: latencySent * n - latencyReceived,
        // Cores busy while the rate ran (drain included): a saturated side sets the tail.
        serverCores: round((lcpu1.micros - lcpu0.micros) / 1000 / latencyWallMs, 2),
        subscriberCores: round(latencyReports.reduce((sum, r) => sum + r.cpuMicros, 0) / 1000 / latencyWallMs, 2),
      },
      throughput: {
        window,
        deliveriesPerSecond: Math.round(delivered / ((w1 - w0) / 1000)),
        serverCpuMicrosPerDelivery: round((cpu1.micros - cpu0.micros) / delivered, 2),
        clientCpuMicrosPerDelivery: round(clientCpu / tpReceived, 2),
        lost: throughputSent * n - tpReceived,
      },
      closedConnections: closed(),
    };
  } finally {
    await Promise.all([server.stop(), publisher?.stop(), ...subs.map((s) => s.stop())]);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function table(results: Result[]): string {
  const head = ["server", "subs", "RSS MB", "KB/conn", "lat msg/s", "p50 ms", "p99 ms", "lat srv/sub cores", "deliveries/s", "srv µs/dlv", "cli µs/dlv", "lost", "closed"];
  const rows = results.map((r) => [
    r.peer,
    String(r.subscribers),
    String(r.rssMB),
    String(r.rssPerConnKB),
    String(r.latency.perSecond),
    String(r.latency.p50),
    String(r.latency.p99),
    `${r.latency.serverCores} / ${r.latency.subscriberCores}`,
    r.throughput.deliveriesPerSecond.toLocaleString("en-US"),
    String(r.throughput.serverCpuMicrosPerDelivery),
    String(r.throughput.clientCpuMicrosPerDelivery),
    String(r.latency.lost + r.throughput.lost),
    String(r.closedConnections),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

function ratios(results: Result[]): string[] {
  const out: string[] = [];
  for (const n of SUBSCRIBERS) {
    const t = results.find((r) => r.peer === "tidings" && r.subscribers === n);
    if (t === undefined) continue;
    for (const peer of PEERS.filter((p) => p !== "tidings")) {
      const p = results.find((r) => r.peer === peer && r.subscribers === n);
      if (p === undefined) continue;
      out.push(
        `${n} subscribers, tidings vs ${peer}: deliveries/s ×${round(t.throughput.deliveriesPerSecond / p.throughput.deliveriesPerSecond, 2)}, ` +
          `server CPU per delivery ×${round(t.throughput.serverCpuMicrosPerDelivery / p.throughput.serverCpuMicrosPerDelivery, 2)}, ` +
          `p99 ×${round(t.latency.p99 / p.latency.p99, 2)}, RSS per connection ×${round(t.rssPerConnKB / p.rssPerConnKB, 2)}`,
      );
    }
  }
  return out;
}

const results: Result[] = [];
for (const n of SUBSCRIBERS) {
  for (const peer of PEERS) {
    process.stderr.write(`${peer} with ${n} subscribers…\n`);
    results.push(await runOne(peer, n));
  }
}
console.log(
  `\nWebSocket fan-out, servers ${COMPILED ? "on plain node (tidings from dist/)" : "under tsx"}${PIN ? ", pinned (server CPU 0, load CPU 1+)" : ""}, ${MESSAGE_BYTES}-byte messages, ${SUBSCRIBER_PROCESSES} subscriber processes, ` +
    `latency at ${LATENCY_DELIVERIES_PER_S} deliveries/s for ${LATENCY_MS} ms, throughput over ${MEASURE_MS} ms\n`,
);
console.log(table(results));
console.log();
for (const line of ratios(results)) console.log(line);
console.log();
console.log(JSON.stringify({ compiled: COMPILED, pinned: PIN, messageBytes: MESSAGE_BYTES, results }, null, 2));
