/**
 * Reconnect storm (issue 12): N clients in processes of their own, the server killed (-9)
 * and started again on the same port; how long until every client is back, resubscribed
 * and caught up, whether anything was lost, and whether the server stayed responsive.
 *
 *   node --import tsx bench/reconnect-storm/run.ts [--clients 2000] [--procs 8] [--down 1000] [--rounds 1]
 *
 * Two systems, one after the other in each round (order alternating):
 *   - tidings on SQLite (bench/changes/server.ts), clients are the SDK with its defaults
 *     (WebSocket first, full-jitter backoff from 250 ms up to 10 s), subscribed to "storm";
 *   - socket.io 4.8 (bench/reconnect-storm/socketio-server.ts), clients are socket.io-client
 *     with its defaults (1 s doubling up to 5 s, ±50 % jitter), in the room "storm".
 * Sequence: 100 messages at 100/s; the server is killed and, `--down` ms later, started
 * again; at once 100 messages are published back to back (the burst: clients not yet back
 * must fetch them from their cursor), then 300 more at 100/s while GET /healthz is timed
 * every 50 ms, and until every client is back and (tidings) holds the last message, or 60 s.
 * Per client: reconnect time (first connection after the restart, from the moment the
 * server listens again; for the SDK its `connected` event, which comes once the
 * subscriptions are read again), catch-up time (receipt of the burst's last message),
 * missing / duplicated / out-of-order messages over the whole run. The SDK's reasons to
 * wait before reconnecting are counted.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { signToken } from "../../src/auth/tokens.js";
import { Histogram } from "../longpoll/histogram.js";
import { BENCH_DB, BENCH_SECRET, epochMs } from "../changes/constants.js";
import type { ClientSummary, ReportRequest } from "./clients.js";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "2000" },
    procs: { type: "string", default: "8" },
    down: { type: "string", default: "1000" },
    rounds: { type: "string", default: "1" },
  },
});
const CLIENTS = Number(values.clients);
const PROCS = Number(values.procs);
const DOWN_MS = Number(values.down);
const ROUNDS = Number(values.rounds);
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type System = "tidings" | "socket.io";

function child<T>(script: string, args: string[]): Promise<{ proc: ChildProcess; first: T }> {
  const proc = fork(script, args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    proc.once("message", (first) => resolve({ proc, first: first as T }));
    proc.once("exit", (code) => reject(new Error(`${script} exited ${code} before it was ready`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startServer(system: System, port: number, dir: string) {
  return system === "tidings"
    ? child<{ url: string }>(here("../changes/server.ts"), [`sqlite:${join(dir, "storm.db")}`, String(port)])
    : child<{ url: string }>(here("socketio-server.ts"), [String(port)]);
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await gone;
}

async function runRound(system: System, publisherToken: string) {
  const dir = mkdtempSync(join(tmpdir(), "tidings-storm-"));
  const port = await freePort();
  let server = await startServer(system, port, dir);
  const url = server.first.url;
  let seq = 0;
  const publish = async (): Promise<void> => {
    const n = seq++;
    const [path, body] =
      system === "tidings" ? [`/${BENCH_DB}/publish`, { channel: "storm", message: { type: "storm", seq: n } }] : ["/publish", { seq: n }];
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${publisherToken}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`publish ${n}: ${res.status} ${await res.text()}`);
  };
  const paced = async (count: number, perSecond: number): Promise<void> => {
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / perSecond - performance.now();
      if (wait > 0) await sleep(wait);
      await publish();
    }
  };
  const per = Math.ceil(CLIENTS / PROCS);
  const clientProcs = await Promise.all(
    Array.from({ length: PROCS }, (_, p) => child(here("clients.ts"), [system, url, String(Math.min(per, CLIENTS - p * per)), String(p * per)])),
  );
  const progress = new Map<ChildProcess, { back: number; complete: number }>();
  for (const c of clientProcs) {
    c.proc.on("message", (m: { back?: number; complete?: number }) => {
      if (m.back !== undefined) progress.set(c.proc, { back: m.back, complete: m.complete ?? 0 });
    });
  }
  try {
    await paced(100, 100);
    await sleep(1000);
    const killAt = epochMs();
    for (const c of clientProcs) c.proc.send({ killAt });
    await kill(server.proc);
    await sleep(DOWN_MS);
    server = await startServer(system, port, dir);
    const restartedAt = epochMs();
    // The burst, then paced messages while /healthz is timed.
    for (let i = 0; i < 100; i++) await publish();
    const burstLast = seq - 1;
    const health = new Histogram();
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        await fetch(`${url}/healthz`).then((r) => r.text());
        health.record(performance.now() - t);
        await sleep(50);
      }
    })();
    await paced(300, 100);
    for (const c of clientProcs) c.proc.send({ last: seq - 1 });
    const deadline = Date.now() + 60_000;
    const done = () =>
      [...progress.values()].reduce((a, p) => a + (system === "tidings" ? p.complete : p.back), 0) >= CLIENTS;
    await sleep(500);
    while (!done() && Date.now() < deadline) await sleep(250);
    probing = false;
    await prober;
    const request: ReportRequest = { killAt, burstLast, last: seq - 1 };
    const summaries: ClientSummary[] = [];
    const reasons = new Map<string, number>();
    await Promise.all(
      clientProcs.map(
        (c) =>
          new Promise<void>((resolve) => {
            c.proc.on("message", (m: { summaries?: ClientSummary[]; reasons?: Array<[string, number]> }) => {
              if (m.summaries === undefined) return;
              summaries.push(...m.summaries);
              for (const [r, n] of m.reasons ?? []) reasons.set(r, (reasons.get(r) ?? 0) + n);
              resolve();
            });
            c.proc.send({ ...request, report: true });
          }),
      ),
    );
    return { summaries, restartedAt, health, published: seq, reasons };
  } finally {
    for (const c of clientProcs) c.proc.kill("SIGTERM");
    await kill(server.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A text histogram of reconnect delays: 250 ms buckets, wider when that needs over 24 lines. */
function plot(delays: number[]): string {
  if (delays.length === 0) return "  (no client reconnected)";
  const bucket = Math.max(250, Math.ceil(Math.max(...delays) / 24 / 250) * 250);
  const counts = new Map<number, number>();
  for (const d of delays) counts.set(Math.floor(d / bucket), (counts.get(Math.floor(d / bucket)) ?? 0) + 1);
  const top = Math.max(...counts.values());
  const last = Math.max(...counts.keys());
  const lines: string[] = [];
  for (let b = 0; b <= last; b++) {
    const n = counts.get(b) ?? 0;
    lines.push(`  ${((b * bucket) / 1000).toFixed(2).padStart(5)}–${(((b + 1) * bucket) / 1000).toFixed(2).padEnd(5)} s ${"█".repeat(Math.round((40 * n) / top)).padEnd(40)} ${n}`);
  }
  return lines.join("\n");
}

const q = (xs: number[], p: number): string => {
  if (xs.length === 0) return "–";
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! / 1000).toFixed(2);
};

async function main(): Promise<void> {
  const publisherToken = await signToken(BENCH_SECRET, { db: BENCH_DB, user: "publisher", role: "publisher" });
  console.log(`# bench/reconnect-storm: ${CLIENTS} clients in ${PROCS} processes, server down ${DOWN_MS} ms, ${ROUNDS} round(s); node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
  const rows: string[] = [];
  const plots: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: System[] = round % 2 === 0 ? ["tidings", "socket.io"] : ["socket.io", "tidings"];
    for (const system of order) {
      const r = await runRound(system, publisherToken);
      const reconnect = r.summaries.flatMap((s) => (s.reconnectedAt === null ? [] : [s.reconnectedAt - r.restartedAt]));
      const caught = r.summaries.flatMap((s) => (s.caughtUpAt === null ? [] : [s.caughtUpAt - r.restartedAt]));
      const sum = (f: (s: ClientSummary) => number) => r.summaries.reduce((a, s) => a + f(s), 0);
      const byTransport = new Map<string, number>();
      for (const s of r.summaries) if (s.transport !== null) byTransport.set(s.transport, (byTransport.get(s.transport) ?? 0) + 1);
      rows.push(
        `| ${round + 1} | ${system} | ${reconnect.length} / ${CLIENTS} | ${q(reconnect, 0.5)} | ${q(reconnect, 0.99)} | ${q(reconnect, 1)} | ` +
          `${caught.length} / ${CLIENTS} | ${q(caught, 0.99)} | ${q(caught, 1)} | ${sum((s) => s.missing)} of ${r.published * CLIENTS} | ` +
          `${sum((s) => s.duplicated)} | ${sum((s) => s.outOfOrder)} | ${r.health.quantile(0.99).toFixed(1)} / ${r.health.quantile(1).toFixed(1)} | ` +
          `${[...byTransport].map(([t, n]) => `${t} ${n}`).join(", ")} |`,
      );
      const why = [...r.reasons].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${n} × ${k}`);
      plots.push(
        `round ${round + 1}, ${system}: reconnect delay after the restart (clients per bucket)\n${plot(reconnect)}` +
          (why.length > 0 ? `\n  waits before reconnecting, by reason: ${why.join("; ")}` : ""),
      );
      console.log(`round ${round + 1} ${system} done, load ${loadavg()[0]!.toFixed(2)}`);
    }
  }
  console.log("");
  console.log("| round | system | reconnected | reconnect p50 s | p99 s | max s | caught up | catch-up p99 s | max s | missing deliveries | duplicated | out of order | /healthz p99 / max ms | back on |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  console.log("");
  for (const p of plots) console.log(`${p}\n`);
  process.exit(0);
}

await main();
