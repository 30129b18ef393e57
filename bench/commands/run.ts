/**
 * Command round trips: send → a client in another process runs a no-op → the sender sees
 * the outcome. Open loop at a fixed rate; reports commands/s and latency percentiles.
 *
 *   node --import tsx bench/commands/run.ts [--rate 500] [--duration 10] [--transport websocket|longpoll]
 *     [--store sqlite|memory|<store URL>] [--sender api|http]   (a store URL keeps its data: clean it up)
 *
 * `--sender api`: the server runs in this process and the sender uses bus.commands.send and
 * the outcome promise. `--sender http`: the server is a third process and the sender uses
 * `POST /<db>/commands?wait=30` (send and long-poll the outcome in one request).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { signToken } from "../../src/auth/tokens.js";
import { createServer, type TidingsServer } from "../../src/server.js";
import { cpuMs } from "../longpoll/proc-stats.js";
import { BENCH_SECRET, benchServerOptions } from "./options.js";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "500" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    transport: { type: "string", default: "websocket" },
    store: { type: "string", default: "sqlite" },
    sender: { type: "string", default: "api" },
  },
});
const rate = Number(values.rate);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const transport = values.transport === "longpoll" ? "longpoll" : "websocket";
const sender = values.sender === "http" ? "http" : "api";
const here = fileURLToPath(new URL(".", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "tidings-bench-commands-"));
// sqlite, memory, or a store URL (postgres://…?schema=…, redis://…?prefix=…).
const store = values.store === "memory" ? "memory:" : values.store === "sqlite" ? `sqlite:${join(dir, "bench.db")}` : values.store!;
const address = "bench:1";

const children: ChildProcess[] = [];
function child(script: string, args: string[]): { proc: ChildProcess; firstLine: Promise<string> } {
  const proc = spawn(process.execPath, ["--import", "tsx", join(here, script), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(proc);
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { proc, firstLine };
}

let server: TidingsServer | null = null;
let url: string;
let serverPid = process.pid;
if (sender === "api") {
  server = await createServer(benchServerOptions(store));
  await server.listen(0, "127.0.0.1");
  url = server.url;
} else {
  const c = child("server.ts", [store]);
  url = await c.firstLine;
  serverPid = c.proc.pid!;
}

const botToken = await signToken(BENCH_SECRET, { db: "bench", user: "bot", addresses: ["bench:*"] });
const publisherToken = await signToken(BENCH_SECRET, { db: "bench", user: "app", role: "publisher" });
const clientProc = child("client.ts", [url, botToken, address, transport]);
await clientProc.firstLine;
const clientPid = clientProc.proc.pid!;

const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL(`${url}/bench/commands?wait=30`);
const body = JSON.stringify({ address, method: "noop", args: [] });

/** One round trip; resolves with its final state. */
function roundTrip(): Promise<string> {
  if (server !== null) {
    return server.bus.commands.send("bench", address, "noop").then(async (s) => (await s.outcome).state);
  }
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${publisherToken}` },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve((JSON.parse(text) as { state?: string; error?: { code: string } }).state ?? "error"));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends at `rate` per second for `seconds`; returns the latencies (ms) and the failures. */
async function phase(seconds: number): Promise<{ latencies: number[]; failures: number; elapsed: number }> {
  const latencies: number[] = [];
  let failures = 0;
  let sent = 0;
  const total = Math.round(rate * seconds);
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      while (sent < due) {
        sent++;
        const t0 = performance.now();
        const p = roundTrip().then(
          (state) => {
            if (state === "succeeded") latencies.push(performance.now() - t0);
            else failures++;
          },
          () => {
            failures++;
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inflight);
  return { latencies, failures, elapsed: (performance.now() - start) / 1000 };
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

try {
  await phase(warmup);
  const cpuBefore = { server: cpuMs(serverPid), client: cpuMs(clientPid) };
  const { latencies, failures, elapsed } = await phase(duration);
  const done = Math.max(1, latencies.length);
  // Per command, in µs: the server's (with the sender, when it shares its process) and the client's.
  const cpu = {
    server: Math.round(((cpuMs(serverPid) - cpuBefore.server) * 1000) / done),
    client: Math.round(((cpuMs(clientPid) - cpuBefore.client) * 1000) / done),
  };
  latencies.sort((a, b) => a - b);
  const f = (ms: number): string => ms.toFixed(2);
  const result = {
    transport,
    store: values.store!.replace(/^(\w+):.*$/, "$1"),
    sender,
    target: rate,
    completed: latencies.length,
    failures,
    perSecond: Math.round(latencies.length / elapsed),
    p50: f(pct(latencies, 0.5)),
    p90: f(pct(latencies, 0.9)),
    p99: f(pct(latencies, 0.99)),
    max: f(latencies[latencies.length - 1] ?? NaN),
    serverCpuUs: cpu.server,
    clientCpuUs: cpu.client,
    load: loadavg()[0]!.toFixed(1),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdout.write(
    `| ${transport} | ${result.store} | ${sender} | ${rate} | ${result.perSecond} | ${result.p50} | ${result.p90} | ${result.p99} | ${result.max} | ${failures} | ${cpu.server} | ${cpu.client} | ${result.load} |\n`,
  );
} finally {
  for (const c of children) c.kill("SIGTERM");
  agent.destroy();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
}
