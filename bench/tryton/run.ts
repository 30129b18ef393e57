/**
 * trytond's own bus and tidings side by side, fed by the same trytond publishes.
 *
 *   node --import tsx bench/tryton/run.ts [--loads 50x25,50x100,100x100] [--seconds 5] [--warm-up 3]
 *        [--buses trytond,tidings] [--modes together,turns]
 *
 * One Tryton database (cloned from the tests' template), trytond 6.0 as a server process
 * (its own LongPollingBus), tidings as a server process (`tidings serve --tryton-url …`, from
 * dist/, built first when src/ changed), and one trytond
 * publisher (test/tryton/trytond_publish.py: `trytond.bus.notify(user=1)`, one Tryton
 * transaction each) at M notifications/s. Each load `NxM` runs N long-polling clients on
 * each bus at the same time (`together`: the same publishes feed both), then again on each
 * bus alone (`turns`: the machine's two cores to one bus and its clients), every client
 * polling as a Tryton client does (one message per answer, re-polling from the last
 * message_id, Tryton session header). A notification
 * carries its sequence number and send time: per bus, lost / duplicated / out-of-order
 * deliveries, deliveries/s (from the first publish to the last delivery, at least the
 * publishing time) and latency quantiles, from the publisher's request and from
 * trytond's commit (the publisher's answer). Clients run in processes of their own
 * (bench/tryton/clients.ts, 50 each). A notification counts as lost when no client of a bus
 * has it 6 s (trytond: it keeps messages 5 s) or 30 s (tidings) after the last publish.
 * The CPU time of every process, and how long its main thread waited for a CPU, are printed
 * per load, and the time of a fixed loop run just before it (the machine's speed of the moment):
 * on a shared machine they tell a saturated bus from a starved one.
 * TIDINGS_BENCH_PER_SECOND=1 prints latency quantiles per second of publishing on stderr.
 * TIDINGS_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the tidings process there;
 * TIDINGS_BENCH_NODE_ARGS="…" passes node options to it.
 */
import { execFileSync, fork, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { distIsFresh } from "../../scripts/dist-state.mjs";
import { Histogram } from "../longpoll/histogram.js";
import { startServe, type ServeProcess } from "../serve-process.js";
import { cpuMs } from "../longpoll/proc-stats.js";
import type { ClientsReport } from "./clients.js";
import { adminSql, dropDatabase, SERVER_URL, uniqueName } from "../../test/tryton/helpers.js";
import { ADMIN_PASSWORD, cloneTemplate, login, PYTHON, TrytondServer, trytondSkip, trytondVersion, writeConfig, type Session } from "../../test/tryton/trytond.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PUBLISH_PY = fileURLToPath(new URL("../../test/tryton/trytond_publish.py", import.meta.url));

const { values } = parseArgs({
  options: {
    loads: { type: "string", default: "50x25,50x100,100x100" },
    seconds: { type: "string", default: "5" },
    // Uncounted, at the load's rate: first transactions and JIT compilation are slow.
    "warm-up": { type: "string", default: "3" },
    // `--buses tidings` leaves trytond's clients out: what the machine gives tidings alone.
    buses: { type: "string", default: "trytond,tidings" },
    // together: both buses fed by the same publishes at once (what each loses of the same
    // messages); turns: the same load again for each bus alone (two cores cannot hold both
    // buses and their clients at 10,000 deliveries/s: latency of a bus with the machine to itself).
    modes: { type: "string", default: "together,turns" },
  },
});
const MODES = values.modes!.split(",");
const BUSES = new Set(values.buses!.split(","));
const LOADS = values.loads!.split(",").map((l) => l.split("x").map(Number) as [number, number]);
const SECONDS = Number(values.seconds);
const WARM_UP_SECONDS = Number(values["warm-up"]);

interface BusResult {
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** From the publisher's request to receipt. */
  latency: Histogram;
  /** From trytond's commit (the publisher's "ok") to receipt. */
  fromCommit: Histogram;
  /** Failed polls by error text (each costs the client a 50 ms pause). */
  errors: Map<string, number>;
  /** Receipt time of the last delivery (epoch ms). */
  lastAt: number;
}

const CLIENTS_PER_PROCESS = 50;

/** Forks the clients of one bus, `CLIENTS_PER_PROCESS` per process; resolves once all polled. */
async function startClients(url: string, session: Session, count: number, name: string, load: number): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  for (let first = 0; first < count; first += CLIENTS_PER_PROCESS) {
    const n = Math.min(CLIENTS_PER_PROCESS, count - first);
    const proc = fork(join(HERE, "clients.ts"), [url, session.header, String(n), `${name}-${first}`, String(load)], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    procs.push(proc);
  }
  await Promise.all(
    procs.map((p) => new Promise((ok, fail) => p.once("message", ok).once("exit", (code) => fail(new Error(`clients exited ${code}`))))),
  );
  for (const p of procs) {
    progress.set(p, 0);
    p.on("message", (m: { distinct?: number }) => m.distinct !== undefined && progress.set(p, m.distinct));
  }
  return procs;
}

/** Distinct notifications received so far by each clients process. */
const progress = new Map<ChildProcess, number>();

function stopClients(procs: ChildProcess[], total: number): Promise<ClientsReport[]> {
  return Promise.all(
    procs.map(
      (p) =>
        new Promise<ClientsReport>((ok) => {
          p.removeAllListeners("exit");
          p.removeAllListeners("message");
          p.on("message", (m: Partial<ClientsReport>) => m.receipts !== undefined && ok(m as ClientsReport));
          p.send({ total });
        }),
    ),
  );
}

/**
 * `tidings serve --tryton-url …` as an administrator runs it: the CLI, from dist/ (built first
 * when src/ changed: tsx at run time costs CPU per call). Resolves once it leads ingestion.
 */
async function startTidings(db: string, dir: string): Promise<ServeProcess> {
  if (!distIsFresh()) execFileSync(process.execPath, [join(ROOT, "scripts", "build.mjs")], { stdio: "inherit" });
  const prof = process.env.TIDINGS_BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.TIDINGS_BENCH_CPU_PROF] : [];
  const nodeArgs = [...prof, ...(process.env.TIDINGS_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean)];
  let leading!: () => void;
  const leads = new Promise<void>((resolve) => (leading = resolve));
  const args = ["--host", "127.0.0.1", "--log-level", "info", "--databases", db, "--tryton-url", SERVER_URL, "--tryton-poll-interval", "200ms"];
  args.push("--poll-timeout", "30s", "--store", `sqlite:${join(dir, "tidings.db")}`, "--secret", "bench-tryton-secret-bench-tryton-secret-0123");
  const served = await startServe(args, { nodeArgs, onLog: (line) => line.includes("leading ingestion of this Tryton database") && leading() });
  let onExit!: (code: number | null) => void;
  const exited = new Promise<never>((_, reject) => (onExit = (code) => reject(new Error(`tidings serve exited ${code} before leading ingestion`))));
  served.child.once("exit", onExit);
  await Promise.race([leads, exited]);
  served.child.off("exit", onExit);
  return served;
}

let loads = 0;

/**
 * This machine's CPU speed right now: milliseconds of a fixed arithmetic loop, best of three
 * (the same code gives 400–550 ms on this shared machine from one minute to the next, and
 * every process's CPU per operation moves with it).
 */
function referenceLoopMs(): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t = performance.now();
    let x = 0;
    for (let i = 0; i < 1e8; i++) x += i % 7;
    if (x < 0) throw new Error("unreachable");
    best = Math.min(best, performance.now() - t);
  }
  return Math.round(best);
}

async function runLoad(clients: number, rate: number, buses: Record<string, string>, session: Session, dir: string, db: string, pids: Record<string, number>) {
  const loadNumber = ++loads;
  const results: Record<string, BusResult> = {};
  /** Latency by the second of publishing its notification was sent in (all buses). */
  const perSecond: Histogram[] = [];
  const byBus: Record<string, ChildProcess[]> = {};
  for (const [name, base] of Object.entries(buses)) byBus[name] = await startClients(`${base}/${db}/bus`, session, clients, name, loadNumber);
  // Let every client park on both buses (trytond starts its listener on the first poll).
  await new Promise((r) => setTimeout(r, 1500));

  const publisher = spawn(PYTHON!, [PUBLISH_PY, writeConfig(dir), db], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: publisher.stdout! });
  let acked = 0;
  /** Commit time of each counted notification: the publisher answers in order, one line each. */
  const committed: number[] = [];
  const warmUp = Math.round(rate * WARM_UP_SECONDS);
  await new Promise<void>((ok) => lines.once("line", () => ok()));
  lines.on("line", (l) => {
    if (l !== "ok") throw new Error(`publisher: ${l}`);
    if (acked++ >= warmUp) committed.push(Date.now());
  });
  // Warm the buses, their clients and the publisher up, uncounted, at the load's rate (first
  // transactions and JIT compilation are slow: a cold second's p99 is 5–10×, and a process's
  // first load stays slower for a few seconds more).
  const warmUpStart = performance.now();
  for (let n = 0; n < warmUp; n++) {
    const wait = warmUpStart + (n * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    publisher.stdin!.write(`${JSON.stringify({ user: 1, actions: [{ notify: { title: `${loadNumber}:warm-up`, body: String(Date.now()), user: 1 } }] })}\n`);
  }
  await new Promise((r) => setTimeout(r, 1500));
  const total = rate * SECONDS;
  const cpu = (pid: number) => {
    try {
      return cpuMs(pid);
    } catch {
      return NaN;
    }
  };
  /** Milliseconds the process's main thread was runnable but waiting for a CPU (/proc/<pid>/schedstat). */
  const queued = (pid: number) => {
    try {
      return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[1]) / 1e6;
    } catch {
      return NaN;
    }
  };
  const all_pids: Record<string, number> = { ...pids, publisher: publisher.pid!, "bench runner": process.pid };
  for (const [name, procs] of Object.entries(byBus)) procs.forEach((p, i) => (all_pids[`${name} clients ${i + 1}`] = p.pid!));
  const reference = referenceLoopMs();
  const cpuBefore = Object.fromEntries(Object.entries(all_pids).map(([k, pid]) => [k, cpu(pid)]));
  const queuedBefore = Object.fromEntries(Object.entries(all_pids).map(([k, pid]) => [k, queued(pid)]));
  const started = performance.now();
  const startedAt = Date.now();
  const sentAt: number[] = [];
  for (let seq = 0; seq < total; seq++) {
    const due = started + (seq * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.push(Date.now());
    publisher.stdin!.write(`${JSON.stringify({ user: 1, actions: [{ notify: { title: `${loadNumber}:${seq}`, body: String(sentAt[seq]), user: 1 } }] })}\n`);
  }
  const publishSeconds = (performance.now() - started) / 1000;
  const pct = (ms: number) => Math.round(ms / (publishSeconds * 10));
  const cpuShare = Object.entries(all_pids).map(
    ([k, pid]) => `${k} ${pct(cpu(pid) - cpuBefore[k]!)} % (main thread waited for a CPU ${pct(queued(pid) - queuedBefore[k]!)} % of the time)`,
  );
  // Then wait for the publisher.
  const deadline = Date.now() + 30_000;
  while (acked < total + warmUp && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const exited = new Promise<number | null>((r) => publisher.once("exit", (code) => r(code)));
  publisher.stdin!.end();
  if ((await exited) !== 0) throw new Error("the trytond publisher failed");
  // Every notification is in the clients' hands, or none will come any more: trytond keeps a
  // message 5 s (6 s after the last publish), tidings keeps it (30 s, then it counts as lost).
  const end = Date.now();
  const complete = (name: string) => byBus[name]!.reduce((a, p) => a + (progress.get(p) ?? 0), 0) >= total * clients;
  for (const name of Object.keys(buses)) {
    const limit = end + (name === "trytond" ? 6000 : 30_000);
    while (!complete(name) && Date.now() < limit) await new Promise((r) => setTimeout(r, 100));
  }
  // Parked polls are abandoned: the next load starts fresh clients.
  for (const name of Object.keys(buses)) {
    const r: BusResult = { delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, latency: new Histogram(), fromCommit: new Histogram(), errors: new Map(), lastAt: startedAt };
    results[name] = r;
    for (const rep of await stopClients(byBus[name]!, total)) {
      r.delivered += rep.delivered;
      r.lost += rep.missing;
      r.duplicated += rep.duplicated;
      r.outOfOrder += rep.outOfOrder;
      r.latency.addSparse(rep.latency);
      for (const [e, n] of rep.errors) r.errors.set(e, (r.errors.get(e) ?? 0) + n);
      for (const [seq, at] of rep.receipts) {
        if (committed[seq] !== undefined) r.fromCommit.record(at - committed[seq]!);
        if (sentAt[seq] !== undefined) (perSecond[Math.floor(seq / rate)] ??= new Histogram()).record(at - sentAt[seq]!);
        r.lastAt = Math.max(r.lastAt, at);
      }
    }
  }
  if (process.env.TIDINGS_BENCH_PER_SECOND) {
    perSecond.forEach((h, i) => console.error(`load ${loadNumber}, second ${i} of publishing: p50 ${h.quantile(0.5)} / p99 ${h.quantile(0.99)} / max ${h.quantile(1)} ms`));
  }
  const lag = new Histogram();
  // How far behind the publisher's requests trytond's commits were.
  committed.forEach((at, seq) => lag.record(at - (sentAt[seq] ?? at)));
  return { results, total, startedAt, acked, cpuShare, lag, reference };
}

async function main(): Promise<void> {
  if (trytondSkip) throw new Error(trytondSkip);
  const db = uniqueName("tidings_bench_tryton");
  const dir = mkdtempSync(join(tmpdir(), "tidings-bench-tryton-"));
  const admin = adminSql();
  await cloneTemplate(db);
  const trytond = await TrytondServer.start(dir);
  const tidings = await startTidings(db, dir);
  try {
    const session = await login(trytond.url, db, "admin", ADMIN_PASSWORD);
    console.log(`trytond ${trytondVersion()} (werkzeug server, LongPollingBus) vs tidings (SQLite), ${SECONDS} s per load, node ${process.version}`);
    console.log("| clients × notifications/s | bus | deliveries expected | delivered | lost | duplicated | out of order | deliveries/s | p50 ms | p99 ms | from commit p50 / p99 ms |");
    console.log("|---|---|---|---|---|---|---|---|---|---|---|");
    for (const [clients, rate] of LOADS) {
      const pids = { trytond: trytond.pid, tidings: tidings.child.pid! };
      const all = Object.entries({ trytond: trytond.url, tidings: tidings.url }).filter(([name]) => BUSES.has(name));
      const runs: Array<{ buses: Record<string, string>; label: string }> = [];
      if (MODES.includes("together") || all.length === 1) runs.push({ buses: Object.fromEntries(all), label: all.length > 1 ? " (together)" : "" });
      if (MODES.includes("turns") && all.length > 1) for (const bus of all) runs.push({ buses: Object.fromEntries([bus]), label: " (alone)" });
      for (const { buses, label } of runs) {
        const { results, total, startedAt, cpuShare, lag, reference } = await runLoad(clients, rate, buses, session, dir, db, pids);
        for (const [name, r] of Object.entries(results)) {
          const expected = total * clients;
          const q = (h: Histogram, p: number) => (h.total === 0 ? "–" : h.quantile(p).toFixed(1));
          console.log(
            `| ${clients} × ${rate} | ${name}${label} | ${expected} | ${r.delivered} | ${r.lost} (${((100 * r.lost) / expected).toFixed(1)} %) | ${r.duplicated} | ${r.outOfOrder} | ${Math.round(r.delivered / Math.max(SECONDS, (r.lastAt - startedAt) / 1000))} | ${q(r.latency, 0.5)} | ${q(r.latency, 0.99)} | ${q(r.fromCommit, 0.5)} / ${q(r.fromCommit, 0.99)} |`,
          );
        }
        for (const [name, r] of Object.entries(results)) {
          if (r.errors.size > 0) console.log(`|   | (${name}: failed polls ${[...r.errors].map(([e, n]) => `${n} × ${e}`).join("; ")}) |`);
        }
        console.log(`|   | (publisher: commit p50 ${lag.quantile(0.5).toFixed(1)} / p99 ${lag.quantile(0.99).toFixed(1)} ms after the request; reference loop ${reference} ms; CPU while publishing: ${cpuShare.join(", ")}) |`);
      }
    }
  } finally {
    tidings.child.kill("SIGTERM");
    await trytond.stop();
    await dropDatabase(admin, db);
    await admin.end({ timeout: 5 });
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
