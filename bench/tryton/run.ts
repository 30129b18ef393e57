/**
 * trytond's own bus and tidings side by side, fed by the same trytond publishes.
 *
 *   node --import tsx bench/tryton/run.ts [--loads 50x25,50x100,100x100] [--seconds 5]
 *
 * One Tryton database (cloned from the tests' template), trytond 6.0 as a server process
 * (its own LongPollingBus), tidings as a server process (`tryton.url`), and one trytond
 * publisher (test/tryton/trytond_publish.py: `trytond.bus.notify(user=1)`, one Tryton
 * transaction each) at M notifications/s. Each load `NxM` runs N long-polling clients on
 * each bus at the same time, every client polling as a Tryton client does (one message per
 * answer, re-polling from the last message_id, Tryton session header). A notification
 * carries its sequence number and send time: per bus, lost / duplicated / out-of-order
 * deliveries, deliveries/s and latency quantiles (send to receipt).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Histogram } from "../longpoll/histogram.js";
import { adminSql, dropDatabase, SERVER_URL, uniqueName } from "../../test/tryton/helpers.js";
import { ADMIN_PASSWORD, cloneTemplate, login, PYTHON, TrytondServer, trytondSkip, trytondVersion, writeConfig, type Session } from "../../test/tryton/trytond.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const PUBLISH_PY = fileURLToPath(new URL("../../test/tryton/trytond_publish.py", import.meta.url));

const { values } = parseArgs({ options: { loads: { type: "string", default: "50x25,50x100,100x100" }, seconds: { type: "string", default: "5" } } });
const LOADS = values.loads!.split(",").map((l) => l.split("x").map(Number) as [number, number]);
const SECONDS = Number(values.seconds);

interface BusResult {
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  latency: Histogram;
}

/** One long-polling client of one bus, as Tryton clients poll. */
class Client {
  private cursor: string | null = null;
  private seen = new Set<number>();
  private maxSeq = -1;
  stopped = false;
  constructor(
    private readonly url: string,
    private readonly session: Session,
    private readonly agent: Agent,
    private readonly out: BusResult,
    private readonly id: string,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      let body: { message: { message_id: string; title: string; body: string } | null };
      try {
        body = await this.poll();
      } catch {
        if (!this.stopped) await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const m = body.message;
      if (m === null) continue;
      this.cursor = m.message_id;
      if (m.title === "warm-up") continue;
      const seq = Number(m.title);
      this.out.latency.record(Date.now() - Number(m.body));
      this.out.delivered++;
      if (this.seen.has(seq)) this.out.duplicated++;
      else this.seen.add(seq);
      if (seq < this.maxSeq) this.out.outOfOrder++;
      this.maxSeq = Math.max(this.maxSeq, seq);
    }
  }

  missing(total: number): number {
    return total - this.seen.size;
  }

  private poll(): Promise<{ message: { message_id: string; title: string; body: string } | null }> {
    const payload = JSON.stringify({ last_message: this.cursor, channels: [`client:${this.id}`] });
    return new Promise((resolve, reject) => {
      const req = request(this.url, {
        method: "POST",
        agent: this.agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), authorization: this.session.header },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`${res.statusCode} ${text.slice(0, 200)}`));
          try {
            resolve(JSON.parse(text));
          } catch (e) {
            reject(e);
          }
        });
      });
      req.end(payload);
    });
  }
}

function startTidings(db: string, dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(HERE, "tidings-process.ts"), SERVER_URL, db, join(dir, "tidings.db")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`tidings exited ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => resolve({ url: line.replace(/^listening /, ""), child }));
  });
}

async function runLoad(clients: number, rate: number, buses: Record<string, string>, session: Session, dir: string, db: string) {
  const results: Record<string, BusResult> = {};
  const all: Client[] = [];
  const byBus: Record<string, Client[]> = {};
  const agents: Agent[] = [];
  for (const [name, base] of Object.entries(buses)) {
    const out: BusResult = { delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, latency: new Histogram() };
    results[name] = out;
    const agent = new Agent({ keepAlive: true, maxSockets: clients + 10 });
    agents.push(agent);
    byBus[name] = Array.from({ length: clients }, (_, i) => new Client(`${base}/${db}/bus`, session, agent, out, `${name}-${i}`));
    all.push(...byBus[name]!);
  }
  const running = all.map((c) => c.run());
  // Let every client park on both buses (trytond starts its listener on the first poll).
  await new Promise((r) => setTimeout(r, 1500));

  const publisher = spawn(PYTHON!, [PUBLISH_PY, writeConfig(dir), db], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: publisher.stdout! });
  let acked = 0;
  await new Promise<void>((ok) => lines.once("line", () => ok()));
  lines.on("line", (l) => {
    if (l !== "ok") throw new Error(`publisher: ${l}`);
    acked++;
  });
  // Warm both buses and the publisher up (first transactions and JIT are slow), uncounted.
  for (let n = 0; n < 20; n++) {
    publisher.stdin!.write(`${JSON.stringify({ user: 1, actions: [{ notify: { title: "warm-up", body: String(Date.now()), user: 1 } }] })}\n`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 1500));
  const total = rate * SECONDS;
  const started = performance.now();
  for (let seq = 0; seq < total; seq++) {
    const due = started + (seq * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    publisher.stdin!.write(`${JSON.stringify({ user: 1, actions: [{ notify: { title: String(seq), body: String(Date.now()), user: 1 } }] })}\n`);
  }
  const publishSeconds = (performance.now() - started) / 1000;
  // Then wait for the publisher, and give the buses 3 s to deliver the rest.
  const deadline = Date.now() + 30_000;
  while (acked < total + 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const exited = new Promise<number | null>((r) => publisher.once("exit", (code) => r(code)));
  publisher.stdin!.end();
  if ((await exited) !== 0) throw new Error("the trytond publisher failed");
  await new Promise((r) => setTimeout(r, 3000));
  for (const c of all) c.stopped = true;
  // Parked polls are abandoned: the next load starts fresh clients.
  for (const a of agents) a.destroy();
  for (const name of Object.keys(buses)) {
    for (const c of byBus[name]!) results[name]!.lost += c.missing(total);
  }
  return { results, running, total, publishSeconds, acked };
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
    console.log("| clients × notifications/s | bus | deliveries expected | delivered | lost | duplicated | out of order | deliveries/s | p50 ms | p99 ms |");
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const [clients, rate] of LOADS) {
      const { results, running, total, publishSeconds } = await runLoad(clients, rate, { trytond: trytond.url, tidings: tidings.url }, session, dir, db);
      for (const [name, r] of Object.entries(results)) {
        const expected = total * clients;
        const q = (p: number) => (r.latency.total === 0 ? "–" : r.latency.quantile(p).toFixed(1));
        console.log(
          `| ${clients} × ${rate} | ${name} | ${expected} | ${r.delivered} | ${r.lost} (${((100 * r.lost) / expected).toFixed(1)} %) | ${r.duplicated} | ${r.outOfOrder} | ${Math.round(r.delivered / publishSeconds)} | ${q(0.5)} | ${q(0.99)} |`,
        );
      }
      void Promise.allSettled(running);
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
