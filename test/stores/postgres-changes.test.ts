/**
 * Model changes captured by PostgreSQL triggers (`tidings changes watch`, issue 11) against
 * the real server: each operation, updated_fields, a no-op update, a rollback, a bulk UPDATE
 * of 10,000 rows delivered in order to a subscriber of another instance, a column added
 * later, unwatch, and bad input refused with nothing half-installed. The application's
 * tables live in a schema of their own, not tidings'.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { TidingsBus as Bus } from "../../src/bus.js";
import { TidingsError, type ErrorCode } from "../../src/errors.js";
import { listWatched, unwatchTable, watchTable } from "../../src/stores/postgres/watch.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { runCli } from "../cli/cli-process.js";
import { POSTGRES_URL, storeEngines } from "../helpers/store-engines.js";

const DB = "shop";
const { engines, pgSchema: SCHEMA, cleanup } = await storeEngines("triggers");
const pg = engines.find((e) => e.name === "postgres")!;
const APP = `app_${SCHEMA.slice("tidings_".length)}`;

interface Change {
  channel: string;
  type: string;
  group: string;
  object: Record<string, unknown>;
}

function change(m: StoredMessage): Change {
  const parsed = JSON.parse(m.json) as { type: string; message_id: string; data: { type: string; group: string; object: Record<string, unknown> } };
  assert.equal(parsed.type, "subscription-update");
  assert.equal(parsed.message_id, m.id);
  return { channel: m.channel, type: parsed.data.type, group: parsed.data.group, object: parsed.data.object };
}

/** A subscriber on `bus`: everything after `after` on `channels`, in the order delivered. */
function subscribe(bus: Bus, channels: readonly string[], after: string) {
  const got: StoredMessage[] = [];
  const stream = bus.stream(DB, channels, after, { onMessages: (ms) => got.push(...ms) });
  return {
    got,
    close: () => stream.close(),
    /** Resolves once `n` messages arrived; fails after the deadline naming what came. */
    async atLeast(n: number, ms = 30_000): Promise<StoredMessage[]> {
      const deadline = performance.now() + ms;
      while (got.length < n) {
        if (performance.now() > deadline) throw new Error(`got ${got.length} of ${n} messages: ${got.slice(-3).map((m) => m.json).join(" ")}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return got;
    },
  };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, text: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TidingsError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, text);
    return true;
  });
}

describe("model changes from PostgreSQL triggers", { skip: pg.skip }, () => {
  let app: Bus; // the instance next to the application
  let other: Bus; // another instance, where subscribers are
  let sql: postgres.Sql; // the application's own connection
  before(async () => {
    [app, other] = await Promise.all([
      Bus.create({ store: pg.url, databases: [DB], logLevel: "silent" }),
      Bus.create({ store: pg.url, databases: [DB], logLevel: "silent" }),
    ]);
    sql = postgres(POSTGRES_URL, { max: 4, onnotice: () => {} });
    await sql.unsafe(`
      CREATE SCHEMA ${APP};
      CREATE TABLE ${APP}.invoice (id int PRIMARY KEY, state text NOT NULL, total numeric, customer_id int, meta json);
      CREATE TABLE ${APP}.document (code text PRIMARY KEY, title text, body text, secret text);
      CREATE TABLE ${APP}.line (invoice_id int, n int, qty int, PRIMARY KEY (invoice_id, n));
      CREATE TABLE ${APP}.bulk (id int PRIMARY KEY, n int NOT NULL);
      CREATE TABLE ${APP}.nokey (x int);
      CREATE VIEW ${APP}.invoice_view AS SELECT * FROM ${APP}.invoice;`);
  });
  after(async () => {
    try {
      await sql?.unsafe(`DROP SCHEMA IF EXISTS ${APP} CASCADE`);
      await sql?.end({ timeout: 5 });
      await Promise.all([app?.close(), other?.close()]);
    } finally {
      await cleanup();
    }
  });

  /** A cursor at the head of the log: a marker published now. */
  const marker = () => app.publish(DB, "marker", { type: "marker" });

  it("publishes each insert, update and delete with the key as object, and nothing for a no-op update or a rollback", async () => {
    const t = `${APP}.invoice`;
    const w = await watchTable(sql, SCHEMA, { table: t, db: DB, model: "invoice" });
    assert.deepEqual([w.keyColumns, w.groups, w.columns], [["id"], ["invoice-{id}"], null]);
    const sub = subscribe(other, ["invoice-1", "invoice-2"], await marker());
    try {
      await sql`INSERT INTO ${sql(APP)}.invoice (id, state, total) VALUES (1, 'draft', 10), (2, 'draft', 20)`;
      await sql`UPDATE ${sql(APP)}.invoice SET state = 'paid', total = 11 WHERE id = 1`;
      await sql`UPDATE ${sql(APP)}.invoice SET state = state`; // changes nothing
      await assert.rejects(
        sql.begin(async (tx) => {
          await tx`UPDATE ${sql(APP)}.invoice SET state = 'void' WHERE id = 2`;
          await tx`DELETE FROM ${sql(APP)}.invoice WHERE id = 1`;
          throw new Error("rollback");
        }),
        /rollback/,
      );
      await sql`UPDATE ${sql(APP)}.invoice SET meta = '{"a": 1}' WHERE id = 2`; // json has no equality: compared as text
      await sql`DELETE FROM ${sql(APP)}.invoice WHERE id = 1`;
      const got = (await sub.atLeast(5)).map(change);
      assert.deepEqual(got, [
        { channel: "invoice-1", type: "create", group: "invoice-1", object: { id: 1 } },
        { channel: "invoice-2", type: "create", group: "invoice-2", object: { id: 2 } },
        { channel: "invoice-1", type: "update", group: "invoice-1", object: { id: 1, updated_fields: ["state", "total"] } },
        { channel: "invoice-2", type: "update", group: "invoice-2", object: { id: 2, updated_fields: ["meta"] } },
        { channel: "invoice-1", type: "delete", group: "invoice-1", object: { id: 1 } },
      ]);
      // Nothing else: a later marker on those channels is the next thing there.
      await app.publish(DB, "invoice-2", { type: "end" });
      assert.equal((await sub.atLeast(6)).length, 6);
      assert.equal(sub.got[5]!.type, "end");
    } finally {
      sub.close();
    }
  });

  it("sends the watched columns of any key, to several groups, rows of any size, the old row on delete", async () => {
    await watchTable(sql, SCHEMA, {
      table: `${APP}.document`,
      db: DB,
      model: "document",
      groups: ["doc-{code}", "docs", "title-{title}"],
      columns: ["title", "body"],
    });
    const sub = subscribe(other, ["doc-a", "docs", "title-T"], await marker());
    const body = "x".repeat(200_000); // far beyond any NOTIFY payload
    try {
      await sql`INSERT INTO ${sql(APP)}.document VALUES ('a', 'T', ${body}, 's1')`;
      await sql`UPDATE ${sql(APP)}.document SET secret = 's2' WHERE code = 'a'`; // not watched: nothing
      await sql`UPDATE ${sql(APP)}.document SET title = NULL, body = 'short' WHERE code = 'a'`;
      await sql`DELETE FROM ${sql(APP)}.document WHERE code = 'a'`;
      const got = (await sub.atLeast(7)).map(change);
      const created = { code: "a", title: "T", body };
      assert.deepEqual(got, [
        { channel: "doc-a", type: "create", group: "doc-a", object: created },
        { channel: "docs", type: "create", group: "docs", object: created },
        { channel: "title-T", type: "create", group: "title-T", object: created },
        // title is NULL now: no title group.
        { channel: "doc-a", type: "update", group: "doc-a", object: { code: "a", title: null, body: "short", updated_fields: ["title", "body"] } },
        { channel: "docs", type: "update", group: "docs", object: { code: "a", title: null, body: "short", updated_fields: ["title", "body"] } },
        { channel: "doc-a", type: "delete", group: "doc-a", object: { code: "a", title: null, body: "short" } },
        { channel: "docs", type: "delete", group: "docs", object: { code: "a", title: null, body: "short" } },
      ]);
      assert.ok(!JSON.stringify(sub.got.map((m) => m.json)).includes("s2"), "an unwatched column never leaves");
    } finally {
      sub.close();
    }
  });

  it("publishes TRUNCATE as a delete of every row it removed (also after a rename), and nothing when it rolls back", async () => {
    await sql.unsafe(`CREATE TABLE ${APP}.tag (id int PRIMARY KEY, name text)`);
    await watchTable(sql, SCHEMA, { table: `${APP}.tag`, db: DB, model: "tag", groups: ["tags"], columns: ["name"] });
    const sub = subscribe(other, ["tags"], await marker());
    try {
      await sql`INSERT INTO ${sql(APP)}.tag VALUES (1, 'red'), (2, 'blue')`;
      await assert.rejects(
        sql.begin(async (tx) => {
          await tx`TRUNCATE ${sql(APP)}.tag`;
          throw new Error("rollback");
        }),
        /rollback/,
      );
      await sql.unsafe(`ALTER TABLE ${APP}.tag RENAME TO label`);
      await sql`TRUNCATE ${sql(APP)}.label`;
      const got = (await sub.atLeast(4)).map(change);
      assert.deepEqual(got, [
        { channel: "tags", type: "create", group: "tags", object: { id: 1, name: "red" } },
        { channel: "tags", type: "create", group: "tags", object: { id: 2, name: "blue" } },
        { channel: "tags", type: "delete", group: "tags", object: { id: 1, name: "red" } },
        { channel: "tags", type: "delete", group: "tags", object: { id: 2, name: "blue" } },
      ]);
      await app.publish(DB, "tags", { type: "end" });
      assert.equal((await sub.atLeast(5))[4]!.type, "end", "nothing from the rolled-back TRUNCATE");
    } finally {
      sub.close();
    }
  });

  it("handles a composite key, and a key that changes as the old record deleted and a new one created", async () => {
    await watchTable(sql, SCHEMA, { table: `${APP}.line`, db: DB, model: "line" });
    const sub = subscribe(other, ["line-1,1", "line-1,2"], await marker());
    try {
      await sql`INSERT INTO ${sql(APP)}.line VALUES (1, 1, 5)`;
      await sql`UPDATE ${sql(APP)}.line SET n = 2, qty = 6`;
      const got = (await sub.atLeast(3)).map((m) => [m.channel, change(m).type, change(m).object]);
      assert.deepEqual(got, [
        ["line-1,1", "create", { invoice_id: 1, n: 1 }],
        ["line-1,1", "delete", { invoice_id: 1, n: 1 }],
        ["line-1,2", "create", { invoice_id: 1, n: 2 }],
      ]);
    } finally {
      sub.close();
    }
  });

  it("delivers a bulk UPDATE of 10,000 rows in order to a subscriber of another instance", async () => {
    const rows = 10_000;
    await sql`INSERT INTO ${sql(APP)}.bulk SELECT i, 0 FROM generate_series(1, ${rows}) i`;
    await watchTable(sql, SCHEMA, { table: `${APP}.bulk`, db: DB, model: "bulk", groups: ["bulk"] });
    const sub = subscribe(other, ["bulk"], await marker());
    try {
      await sql`UPDATE ${sql(APP)}.bulk SET n = n + 1`;
      const got = await sub.atLeast(rows, 60_000);
      assert.equal(got.length, rows);
      for (let i = 1; i < got.length; i++) assert.ok(got[i - 1]!.id < got[i]!.id, `message ${i} in log order`);
      const ids = got.map((m) => change(m).object.id as number);
      assert.equal(new Set(ids).size, rows, "each row once");
      assert.deepEqual(change(got[0]!).object.updated_fields, ["n"]);
      // The order is the statement's own: the order in which it wrote the rows.
      const written = (await sql<{ id: number }[]>`SELECT id FROM ${sql(APP)}.bulk ORDER BY ctid`).map((r) => r.id);
      assert.deepEqual(ids, written);
    } finally {
      sub.close();
    }
  });

  it("sees a column added later, and publishes nothing once unwatched", async () => {
    const t = `${APP}.invoice`;
    await sql.unsafe(`ALTER TABLE ${t} ADD COLUMN due date`);
    const sub = subscribe(other, ["invoice-2"], await marker());
    try {
      await sql.unsafe(`UPDATE ${t} SET due = '2026-12-31' WHERE id = 2`);
      assert.deepEqual(change((await sub.atLeast(1))[0]!).object, { id: 2, updated_fields: ["due"] });
      await unwatchTable(sql, SCHEMA, t);
      const [left] = await sql<{ n: number }[]>`
        SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = ${t}::regclass AND NOT tgisinternal)::int
          + (SELECT count(*) FROM pg_proc WHERE pronamespace = ${SCHEMA}::regnamespace AND proname LIKE 'changes_%')::int
          - (SELECT count(*) FROM ${sql(SCHEMA)}.watched)::int AS n`;
      assert.equal(left!.n, 0, "no trigger left on the table, one function per table still watched");
      await sql.unsafe(`UPDATE ${t} SET state = 'after' WHERE id = 2`);
      await app.publish(DB, "invoice-2", { type: "end" });
      assert.deepEqual((await sub.atLeast(2)).map((m) => m.type), ["subscription-update", "end"]);
      await rejectsWith(unwatchTable(sql, SCHEMA, t), "TIDINGS_ERR_CHANGE_NOT_WATCHED", /is not watched/);
    } finally {
      sub.close();
    }
  });

  it("refuses a missing table, a view, no primary key, watching twice and unknown columns, installing nothing", async () => {
    const before = await listWatched(sql, SCHEMA);
    const spec = { db: DB, model: "x" };
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.missing` }), "TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", /no table/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.invoice_view` }), "TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", /not a table/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: "a.b.c.d" }), "TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", /not a table name/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.nokey` }), "TIDINGS_ERR_CHANGE_TABLE_NO_KEY", /no primary key/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.bulk` }), "TIDINGS_ERR_CHANGE_ALREADY_WATCHED", /already watched/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.nokey`, columns: [] }), "TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN", /at least one/);
    await rejectsWith(
      watchTable(sql, SCHEMA, { ...spec, table: `${APP}.invoice`, columns: ["state", "nope"] }),
      "TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN",
      /no column "nope"/,
    );
    await rejectsWith(
      watchTable(sql, SCHEMA, { ...spec, table: `${APP}.invoice`, groups: ["customer-{customer}"] }),
      "TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN",
      /no column "customer"/,
    );
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, table: `${APP}.invoice`, groups: ["bad-{id"] }), "TIDINGS_ERR_CHANGE_GROUP_INVALID", /template/);
    await rejectsWith(watchTable(sql, SCHEMA, { ...spec, model: "a{b}", table: `${APP}.invoice` }), "TIDINGS_ERR_CHANGE_MODEL_INVALID", /model/);
    assert.deepEqual(await listWatched(sql, SCHEMA), before);
    const [triggers] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = ${`${APP}.invoice`}::regclass AND NOT tgisinternal`;
    assert.equal(triggers!.n, 0, "the unwatched invoice table got no trigger from the failed attempts");
  });

  it("tidings changes watch, list and unwatch from the command line; exit 2 with a sentence on bad input", async () => {
    const store = ["--store", pg.url];
    const watch = await runCli(["changes", "watch", ...store, "--db", DB, "--table", `${APP}.invoice`, "--model", "invoice", "--group", "invoice-{id}", "--group", "customer-{customer_id}", "--columns", "id,state,total"]);
    assert.equal(watch.code, 0, watch.stderr);
    assert.match(watch.stdout, new RegExp(`^watching ${APP}\\.invoice +db=shop +model=invoice +groups: invoice-\\{id\\} customer-\\{customer_id\\} +columns: id,state,total`));
    const list = await runCli(["changes", "list", ...store, "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const tables = list.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { table: string }).table);
    assert.deepEqual(tables, [`${APP}.document`, `${APP}.label`, `${APP}.line`, `${APP}.bulk`, `${APP}.invoice`]);
    const sub = subscribe(other, ["customer-9"], await marker());
    try {
      await sql`INSERT INTO ${sql(APP)}.invoice (id, state, total, customer_id) VALUES (9, 'draft', 1.50, 9)`;
      assert.deepEqual(change((await sub.atLeast(1))[0]!).object, { id: 9, state: "draft", total: 1.5 });
    } finally {
      sub.close();
    }
    for (const [args, text] of [
      [["watch", ...store, "--db", DB, "--table", `${APP}.invoice`, "--model", "invoice"], /TIDINGS_ERR_CHANGE_ALREADY_WATCHED/],
      [["watch", ...store, "--db", DB, "--table", `${APP}.nokey`, "--model", "x"], /TIDINGS_ERR_CHANGE_TABLE_NO_KEY/],
      [["watch", ...store, "--db", DB, "--table", `${APP}.gone`, "--model", "x"], /TIDINGS_ERR_CHANGE_TABLE_UNKNOWN/],
      [["watch", "--store", "memory:", "--db", DB, "--table", `${APP}.invoice`, "--model", "x"], /needs the PostgreSQL store/],
      [["unwatch", ...store, "--table", `${APP}.nokey`], /TIDINGS_ERR_CHANGE_NOT_WATCHED/],
    ] as [string[], RegExp][]) {
      const res = await runCli(["changes", ...args]);
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
      assert.match(res.stderr, text);
    }
    const unwatch = await runCli(["changes", "unwatch", ...store, "--table", `${APP}.invoice`]);
    assert.equal(unwatch.code, 0, unwatch.stderr);
    assert.equal(unwatch.stdout, `unwatched ${APP}.invoice\n`);
  });
});
