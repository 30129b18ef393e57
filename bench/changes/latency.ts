/**
 * From commit to a WebSocket subscriber (issue 11: "a change reaches a subscriber on another
 * instance within 25 ms p99 at 1,000 changes/s").
 *
 *   node --import tsx bench/changes/latency.ts [--loads 1000x10,1000x1,300x1] [--seconds 5] [--rounds 2] [--connections 8]
 *
 * A load `RxK` writes R changed rows per second in transactions of K rows (one
 * `UPDATE … WHERE id BETWEEN` per transaction, 8 connections (`--connections`), open loop: a transaction
 * starts when due, whether or not the ones before committed). Three systems, one after the
 * other in each round (their order alternates):
 *   - tidings: the table watched by `tidings changes watch` (group `invoices`, column `tx`);
 *     two `tidings serve`-like instances on the PostgreSQL store, each in its own process,
 *     and one subscriber process per instance (the SDK over WebSocket). The application
 *     writes to PostgreSQL directly, so every instance is "another instance".
 *   - peer: the hand-written way: a FOR EACH ROW trigger sending pg_notify with the row's
 *     id and tx, one process LISTENing and forwarding each payload over WebSocket, one
 *     subscriber process (bench/changes/peer-relay.ts).
 *   - plain: the same writes on a table with no trigger and nobody listening: what the
 *     application's transactions cost without any change feed (commit time, achieved tx/s).
 * The last column samples, every 5 ms while writing, the age of the oldest transaction
 * holding a transaction id outside the writer (the tidings instances, other users of a
 * shared server): tidings' readers cannot pass it (DESIGN §3).
 * Latency is receipt time minus the time the writer saw its COMMIT acknowledged
 * (performance.timeOrigin + now(), one clock for every process of the machine); receipts a
 * little before the acknowledgement count as 0.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { signToken } from "../../src/auth/tokens.js";
import { PostgresStore } from "../../src/stores/postgres/index.js";
import { watchTable } from "../../src/stores/postgres/watch.js";
import { Histogram } from "../longpoll/histogram.js";
import { BENCH_DB, BENCH_SECRET, epochMs } from "./constants.js";

const { values } = parseArgs({
  options: {
    loads: { type: "string", default: "1000x10,1000x1,300x1" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "8" },
  },
});
const LOADS = values.loads!.split(",").map((l) => l.split("x").map(Number) as [number, number]);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const PG_URL = process.env.TIDINGS_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROWS = 10_000;
const CONNECTIONS = Number(values.connections);
const tag = randomBytes(4).toString("hex");
const SCHEMA = `tidings_bench_latency_${tag}`;
const APP = `app_bench_latency_${tag}`;
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

type System = "tidings" | "peer" | "plain";
const SYSTEMS: System[] = ["tidings", "peer", "plain"];

function child<T>(script: string, args: string[]): Promise<{ proc: ChildProcess; first: T }> {
  const proc = fork(here(script), args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    proc.once("message", (first) => resolve({ proc, first: first as T }));
    proc.once("exit", (code) => reject(new Error(`${script} exited ${code} before it was ready`)));
  });
}

function report(proc: ChildProcess): Promise<Array<[number, number]>> {
  return new Promise((resolve, reject) => {
    proc.once("message", (m) => resolve((m as { got: Array<[number, number]> }).got));
    proc.once("exit", (code) => code !== 0 && reject(new Error(`subscriber exited ${code}`)));
    proc.send("report");
  });
}

interface Outcome {
  txPerS: number;
  commit: Histogram;
  latency: Histogram;
  expected: number;
  delivered: number;
}

/**
 * While `until` is pending, samples every 5 ms the age of the oldest transaction holding a
 * transaction id that is not the bench's writer (other work on a shared PostgreSQL): it
 * holds the horizon back, so tidings' readers wait for it (DESIGN §3).
 */
async function foreignHolders(watcher: postgres.Sql, until: Promise<unknown>): Promise<Histogram> {
  const ages = new Histogram();
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    const [row] = await watcher<{ ms: number | null }[]>`
      SELECT (extract(epoch FROM clock_timestamp() - min(xact_start)) * 1000)::float8 AS ms FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL AND application_name <> 'bench-writer' AND pid <> pg_backend_pid()`;
    ages.record(row?.ms ?? 0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return ages;
}

/** Transaction numbers never repeat in a run: an update that leaves `tx` as it was publishes nothing. */
let nextTx = 0;

/** Writes the load on `table` and returns the writer's side; `acked[i]` is transaction `base + i`. */
async function write(sql: postgres.Sql, table: string, rate: number, k: number) {
  const base = nextTx;
  const txRate = rate / k;
  const total = Math.round(txRate * SECONDS);
  const acked = new Float64Array(total);
  const commit = new Histogram();
  const inflight = new Set<Promise<void>>();
  const started = performance.now();
  for (let tx = 0; tx < total; tx++) {
    const wait = started + (tx * 1000) / txRate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (inflight.size >= CONNECTIONS) await Promise.race(inflight);
    const first = ((tx * k) % ROWS) + 1;
    const t0 = epochMs();
    const p = sql
      .unsafe(`UPDATE ${APP}.${table} SET tx = $1, n = n + 1 WHERE id BETWEEN $2 AND $3`, [base + tx, first, first + k - 1])
      .then(() => {
        acked[tx] = epochMs();
        commit.record(acked[tx]! - t0);
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  nextTx += total;
  return { base, acked, commit, total, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const store = new PostgresStore({ url: PG_URL, schema: SCHEMA });
  await store.open(); // creates the schema; the instances open their own
  await store.close();
  const sql = postgres(PG_URL, { max: CONNECTIONS, onnotice: () => {}, connection: { application_name: "bench-writer" } });
  const watcher = postgres(PG_URL, { max: 1, onnotice: () => {}, connection: { application_name: "bench-watcher" } });
  const procs: ChildProcess[] = [];
  try {
    await sql.unsafe(`CREATE SCHEMA ${APP}`);
    for (const t of SYSTEMS) {
      await sql.unsafe(`CREATE TABLE ${APP}.${t} (id int PRIMARY KEY, tx int NOT NULL DEFAULT -1, n int NOT NULL DEFAULT 0);
        INSERT INTO ${APP}.${t} (id) SELECT generate_series(1, ${ROWS})`);
    }
    await sql.unsafe(`
      CREATE FUNCTION ${APP}.peer_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('bench_peer', json_build_object('id', NEW.id, 'tx', NEW.tx)::text);
        RETURN NULL;
      END $$;
      CREATE TRIGGER peer_notify AFTER UPDATE ON ${APP}.peer FOR EACH ROW EXECUTE FUNCTION ${APP}.peer_notify();`);
    await watchTable(sql, SCHEMA, { table: `${APP}.tidings`, db: BENCH_DB, model: "invoice", groups: ["invoices"], columns: ["tx"] });

    const storeUrl = `${PG_URL}?schema=${SCHEMA}`;
    const instances = await Promise.all([0, 1].map(() => child<{ url: string }>("server.ts", [storeUrl])));
    const relay = await child<{ url: string }>("peer-relay.ts", [PG_URL]);
    procs.push(...instances.map((i) => i.proc), relay.proc);
    const token = await signToken(BENCH_SECRET, { db: BENCH_DB, user: "bench" });

    console.log(`# bench/changes/latency: ${SECONDS} s per load, ${ROUNDS} rounds, ${CONNECTIONS} writer connections; node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
    console.log(
      "| changes/s × rows/tx | system | tx/s due | tx/s achieved | commit p50 / p99 ms | delivered / expected | latency p50 ms | p99 ms | max ms | other transactions' age p99 / max ms |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const [rate, k] of LOADS) {
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
        for (const system of order) {
          const subs =
            system === "tidings"
              ? await Promise.all(instances.map((i) => child("subscriber.ts", ["tidings", i.first.url, token, "invoices"])))
              : system === "peer"
                ? [await child("subscriber.ts", ["peer", relay.first.url])]
                : [];
          const writing = write(sql, system, rate, k);
          const holders = await foreignHolders(watcher, writing);
          const w = await writing;
          await new Promise((r) => setTimeout(r, 2000)); // stragglers
          const latency = new Histogram();
          let delivered = 0;
          const missing: string[] = [];
          for (const [i, s] of subs.entries()) {
            const seen = new Uint32Array(w.total);
            for (const [tx, at] of await report(s.proc)) {
              // A subscription without a cursor starts with the server's recent window: earlier loads.
              if (tx < w.base) continue;
              delivered++;
              seen[tx - w.base]!++;
              latency.record(Math.max(0, at - w.acked[tx - w.base]!));
            }
            seen.forEach((n, tx) => n !== k && missing.push(`subscriber ${i} tx ${tx}: ${n} of ${k}`));
          }
          if (missing.length > 0) console.log(`  (${missing.length} transactions not delivered exactly once: ${missing.slice(0, 5).join("; ")})`);
          const o: Outcome = { txPerS: w.total / w.seconds, commit: w.commit, latency, expected: w.total * k * subs.length, delivered };
          const q = (h: Histogram, p: number) => (h.total === 0 ? "–" : h.quantile(p).toFixed(1));
          console.log(
            `| ${rate} × ${k} | ${system} | ${Math.round(rate / k)} | ${Math.round(o.txPerS)} | ${q(o.commit, 0.5)} / ${q(o.commit, 0.99)} | ` +
              `${system === "plain" ? "–" : `${o.delivered} / ${o.expected}`} | ${q(o.latency, 0.5)} | ${q(o.latency, 0.99)} | ${q(o.latency, 1)} | ` +
              `${q(holders, 0.99)} / ${q(holders, 1)} |`,
          );
        }
      }
    }
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await sql.unsafe(`DROP SCHEMA IF EXISTS ${APP} CASCADE; DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => {});
    await sql.end({ timeout: 5 });
    await watcher.end({ timeout: 5 });
  }
}

await main();
