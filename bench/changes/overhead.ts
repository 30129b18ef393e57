/**
 * What a watched table costs the application's writes (issue 11: "the trigger costs under
 * 2× a plain update on bulk statements").
 *
 *   node --import tsx bench/changes/overhead.ts [--rows 10000] [--singles 1000] [--rounds 3] [--indexed]
 *
 * Four tables of the same shape, written the same way in the same run, in rotating order:
 *   - plain:       no trigger (the reference: 1.00×);
 *   - tidings:     `tidings changes watch` with its defaults (object = primary key, every
 *                  column compared for updated_fields, group invoice-{id});
 *   - notify-row:  the hand-written peer: a FOR EACH ROW trigger that sends
 *                  `pg_notify('changes', '{"op":…,"id":…}')` (data in the payload, lost
 *                  when nobody listens, refused past 8000 bytes);
 *   - outbox-row:  Supabase's "broadcast from the database" shape: a FOR EACH ROW trigger
 *                  that inserts {operation, record, old_record} as jsonb into a messages
 *                  table (no wake-up; Supabase's server polls it).
 * A listener is connected to both notification channels, as a running server would be.
 *
 * Workloads, each timed around the statement(s) on the application's connection:
 *   bulk update  `UPDATE t SET total = total + 1` over all rows, one statement;
 *   bulk insert  `INSERT … SELECT generate_series(…)` of as many rows, one statement;
 *   bulk delete  `DELETE` of those rows, one statement;
 *   single       `UPDATE … WHERE id = $1`, one transaction each, back to back on one connection;
 *   single ×4    the same from 4 connections at once (commits can share a WAL flush…
 *                unless a NOTIFY serialises them, see docs/benchmarks.md).
 * Each round vacuums every table first and empties the log and the outbox; per round the
 * ratio to `plain` is taken, and the report gives the median and range over rounds.
 *
 * Bulk statements are also measured in CPU time of the PostgreSQL backend that ran them
 * (/proc/<pid>/schedstat, so PostgreSQL must run on this machine): on a shared machine
 * wall time drifts by half from one statement to the next, backend CPU by a few percent.
 * A last row, "log rows alone", inserts as many rows of the same size straight into the
 * tidings log (no trigger, no application write): the floor any one-row-per-change design
 * over this log pays, measured in the same run.
 * `--indexed` adds three secondary indexes (state, total, customer_id) to every table, as
 * application tables usually have: the plain update then maintains them (no HOT update).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { PostgresStore } from "../../src/stores/postgres/index.js";
import { watchTable } from "../../src/stores/postgres/watch.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "10000" },
    singles: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    indexed: { type: "boolean", default: false },
  },
});
const ROWS = Number(values.rows);
const SINGLES = Number(values.singles);
const ROUNDS = Number(values.rounds);
const PG_URL = process.env.TIDINGS_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const tag = randomBytes(4).toString("hex");
const SCHEMA = `tidings_bench_changes_${tag}`;
const APP = `app_bench_changes_${tag}`;
const TABLES = ["plain", "tidings", "notify_row", "outbox_row"] as const;
type Table = (typeof TABLES)[number];
const WORKLOADS = ["bulk update", "bulk insert", "bulk delete", "single", "single ×4"] as const;
type Workload = (typeof WORKLOADS)[number];

const PEERS_SQL = `
  CREATE TABLE ${APP}.outbox (id bigserial PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now());
  CREATE FUNCTION ${APP}.notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('changes', json_build_object('op', TG_OP, 'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    RETURN NULL;
  END $$;
  CREATE TRIGGER notify_row AFTER INSERT OR UPDATE OR DELETE ON ${APP}.notify_row
    FOR EACH ROW EXECUTE FUNCTION ${APP}.notify_row();
  CREATE FUNCTION ${APP}.outbox_row() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO ${APP}.outbox (topic, payload) VALUES (
      'invoice:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
      jsonb_build_object('operation', TG_OP, 'table', TG_TABLE_NAME,
        'record', CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
        'old_record', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END));
    RETURN NULL;
  END $$;
  CREATE TRIGGER outbox_row AFTER INSERT OR UPDATE OR DELETE ON ${APP}.outbox_row
    FOR EACH ROW EXECUTE FUNCTION ${APP}.outbox_row();`;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Milliseconds on CPU of a PostgreSQL backend so far, or NaN when its /proc is not readable. */
function backendCpuMs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** Wall and backend CPU milliseconds of `run` (CPU NaN when it used several connections). */
async function timed(pid: number | null, run: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const c = pid === null ? NaN : backendCpuMs(pid);
  const t = performance.now();
  await run();
  const wall = performance.now() - t;
  return { wall, cpu: pid === null ? NaN : backendCpuMs(pid) - c };
}

async function main(): Promise<void> {
  const store = new PostgresStore({ url: PG_URL, schema: SCHEMA });
  await store.open(); // migrates, and LISTENs on the tidings channel as a server does
  const sql = postgres(PG_URL, { max: 4, onnotice: () => {} });
  // Bulk statements on one reserved connection, whose backend's CPU time is read.
  const one = await sql.reserve();
  const [{ pid }] = (await one`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
  const listener = postgres(PG_URL, { max: 1, onnotice: () => {} });
  let notified = 0;
  await listener.listen("changes", () => notified++);
  try {
    await sql.unsafe(`CREATE SCHEMA ${APP}`);
    for (const t of TABLES) {
      await sql.unsafe(`CREATE TABLE ${APP}.${t} (id int PRIMARY KEY, state text NOT NULL, total numeric NOT NULL,
        customer_id int, note text, updated_at timestamptz NOT NULL DEFAULT now())`);
      if (values.indexed) {
        for (const c of ["state", "total", "customer_id"]) await sql.unsafe(`CREATE INDEX ON ${APP}.${t} (${c})`);
      }
    }
    await sql.unsafe(PEERS_SQL);
    await watchTable(sql, SCHEMA, { table: `${APP}.tidings`, db: "bench", model: "invoice" });

    const fill = (t: Table, from: number) =>
      one.unsafe(`INSERT INTO ${APP}.${t} (id, state, total, customer_id, note)
        SELECT i, 'draft', i * 1.5, i % 100, 'note ' || i FROM generate_series(${from}, ${from + ROWS - 1}) i`);
    const singles = async (t: Table, connections: number) => {
      let next = 1;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (next <= SINGLES) {
            const id = next++;
            await sql.unsafe(`UPDATE ${APP}.${t} SET total = total + 1 WHERE id = $1`, [((id * 7919) % ROWS) + 1]);
          }
        }),
      );
    };
    const run: Record<Workload, (t: Table) => Promise<unknown>> = {
      "bulk update": (t) => one.unsafe(`UPDATE ${APP}.${t} SET total = total + 1`),
      "bulk insert": (t) => fill(t, ROWS + 1),
      "bulk delete": (t) => one.unsafe(`DELETE FROM ${APP}.${t} WHERE id > ${ROWS}`),
      single: (t) => singles(t, 1),
      "single ×4": (t) => singles(t, 4),
    };
    for (const t of TABLES) await fill(t, 1);

    const ms = new Map<string, { wall: number; cpu: number }[]>(); // `${workload}|${table}` → per round
    const floors: { wall: number; cpu: number }[] = [];
    console.log(
      `# bench/changes/overhead: ${ROWS} rows per bulk statement, ${SINGLES} single-row transactions, ${ROUNDS} rounds` +
        `${values.indexed ? ", 3 secondary indexes per table" : ""}; node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`,
    );
    for (let round = 0; round < ROUNDS; round++) {
      await sql.unsafe(`TRUNCATE ${SCHEMA}.log, ${APP}.outbox`);
      for (const t of TABLES) await sql.unsafe(`VACUUM ANALYZE ${APP}.${t}`);
      await sql.unsafe(`VACUUM ANALYZE ${SCHEMA}.log`);
      // Rotate who goes first: the machine's speed drifts within a round.
      const order = TABLES.map((_, i) => TABLES[(i + round) % TABLES.length]!);
      for (const w of WORKLOADS) {
        for (const t of order) {
          const key = `${w}|${t}`;
          ms.set(key, [...(ms.get(key) ?? []), await timed(w.startsWith("bulk") ? pid : null, () => run[w](t))]);
        }
      }
      const floor = await timed(pid, () =>
        one.unsafe(`INSERT INTO ${SCHEMA}.log (db, channel, type, payload)
          SELECT 'bench', 'invoice-' || i, 'subscription-update',
            '{"type":"subscription-update","data":{"type":"update","group":"invoice-' || i || '","object":{"id":' || i || ',"updated_fields":["total"]}}}'
          FROM generate_series(1, ${ROWS}) i`),
      );
      floors.push(floor);
      console.log(`round ${round + 1} done, load ${loadavg()[0]!.toFixed(2)}`);
    }
    const [logRows] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM ${sql(SCHEMA)}.log`;
    console.log(`(last round appended ${logRows!.n} changes to the log; ${notified} notify-row notifications received in all)`);
    console.log("");
    console.log("| workload | table | wall ms | rows/s (tx/s) | wall × plain [range] | backend CPU ms | CPU × plain [range] |");
    console.log("|---|---|---|---|---|---|---|");
    const ratio = (xs: number[], base: number[]) => {
      const r = xs.map((x, i) => x / base[i]!);
      return Number.isNaN(r[0]) ? "–" : `${median(r).toFixed(2)} [${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}]`;
    };
    for (const w of WORKLOADS) {
      const base = ms.get(`${w}|plain`)!;
      for (const t of TABLES) {
        const mine = ms.get(`${w}|${t}`)!;
        const wall = mine.map((m) => m.wall);
        const cpu = mine.map((m) => m.cpu);
        const n = w.startsWith("single") ? SINGLES : ROWS;
        console.log(
          `| ${w} | ${t} | ${median(wall).toFixed(1)} | ${Math.round((n * 1000) / median(wall))} | ${ratio(wall, base.map((b) => b.wall))} | ` +
            `${Number.isNaN(cpu[0]) ? "–" : median(cpu).toFixed(1)} | ${ratio(cpu, base.map((b) => b.cpu))} |`,
        );
      }
    }
    const base = ms.get("bulk update|plain")!;
    console.log(
      `| (reference) | log rows alone | ${median(floors.map((f) => f.wall)).toFixed(1)} | ${Math.round((ROWS * 1000) / median(floors.map((f) => f.wall)))} | ` +
        `${ratio(floors.map((f) => f.wall), base.map((b) => b.wall))} | ${median(floors.map((f) => f.cpu)).toFixed(1)} | ${ratio(floors.map((f) => f.cpu), base.map((b) => b.cpu))} |`,
    );
  } finally {
    await sql.unsafe(`DROP SCHEMA IF EXISTS ${APP} CASCADE; DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => {});
    one.release();
    await listener.end({ timeout: 5 });
    await sql.end({ timeout: 5 });
    await store.close();
  }
}

await main();
