import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { describeStore, entry, freshDb, sleep, waitFor } from "./conformance.js";
import { SqliteStore } from "../../src/stores/sqlite/index.js";
import { createBus } from "../../src/bus.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { TidingsError } from "../../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), `tidings-sqlite-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A path in a directory that does not exist yet: open() must create it. */
function freshPath(): string {
  files += 1;
  return join(dir, `run${files}`, "tidings.db");
}

const conformancePath = freshPath();
describeStore("sqlite", {
  create: () => new SqliteStore({ path: conformancePath }),
  reopen: () => new SqliteStore({ path: conformancePath }),
});

async function opened(path: string): Promise<SqliteStore> {
  const store = new SqliteStore({ path });
  await store.open();
  return store;
}

function epochOf(id: string): string {
  return id.slice(0, id.indexOf(":"));
}

describe("sqlite store", () => {
  it("upgrades a file whose claims never expired: they lapse at once and are deleted", async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = freshDb();
    // The file as the two first migrations left it, with a claim in it.
    const old = new Database(path);
    old.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const name of ["001_init.sql", "002_instances.sql"]) {
      old.exec(readFileSync(new URL(`../../src/stores/sqlite/sql/${name}`, import.meta.url), "utf8"));
      old.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(Number.parseInt(name, 10), name, Date.now());
    }
    old.prepare("INSERT INTO owners (db, key, owner) VALUES (?, ?, ?)").run(db, "client:legacy", "7");
    old.close();
    const store = await opened(path);
    try {
      assert.equal(await store.trimOwners(db, Date.now()), 1);
      assert.equal(await store.claimOwner(db, "client:legacy", "8", { now: Date.now(), ttlMs: 60_000, maxPerOwner: 10 }), "8");
    } finally {
      await store.close();
    }
  });

  it("keeps its epoch across a restart", async () => {
    const path = freshPath();
    const db = freshDb();
    const first = await opened(path);
    const [m1] = await first.append(db, [entry("a", { i: 1 })]);
    await first.close();
    const second = await opened(path);
    try {
      const [m2] = await second.append(db, [entry("a", { i: 2 })]);
      assert.equal(epochOf(m2!.id), epochOf(m1!.id));
      const res = await second.read(db, { after: m1!.id, limit: 10 });
      assert.equal(res.gap, false);
      assert.deepEqual(res.messages.map((m) => m.id), [m2!.id]);
    } finally {
      await second.close();
    }
  });

  it("gives a recreated file a new epoch, so an old cursor reads as a gap", async () => {
    const path = freshPath();
    const db = freshDb();
    const first = await opened(path);
    const [old] = await first.append(db, [entry("a", { i: 1 })]);
    await first.close();
    rmSync(join(path, ".."), { recursive: true });
    await sleep(5); // the epoch has millisecond resolution
    const second = await opened(path);
    try {
      const [fresh] = await second.append(db, [entry("a", { i: 2 })]);
      assert.notEqual(epochOf(fresh!.id), epochOf(old!.id));
      assert.ok(fresh!.id !== old!.id);
      const res = await second.read(db, { after: old!.id, limit: 10 });
      assert.equal(res.gap, true);
      assert.deepEqual(res.messages.map((m) => m.id), [fresh!.id]);
    } finally {
      await second.close();
    }
  });

  it("applies each migration once, however often it is opened", async () => {
    const path = freshPath();
    for (let i = 0; i < 3; i++) await (await opened(path)).close();
    const sqlDir = new URL("../../src/stores/sqlite/sql/", import.meta.url);
    const migrations = readdirSync(sqlDir).filter((f) => f.endsWith(".sql"));
    const raw = new Database(path, { readonly: true });
    try {
      const versions = raw.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all();
      assert.deepEqual(versions, migrations.map((f) => Number.parseInt(f, 10)).sort((a, b) => a - b));
      assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
    } finally {
      raw.close();
    }
  });

  it("opens a file a newer tidings migrated compatibly, and refuses one with a breaking migration", async () => {
    const path = freshPath();
    await (await opened(path)).close();
    const raw = new Database(path);
    try {
      raw.prepare("INSERT INTO schema_migrations (version, name, compatible, applied_at) VALUES (999, '999_later.sql', 1, 0)").run();
      const older = await opened(path);
      const db = freshDb();
      const [m] = await older.append(db, [entry("a")]);
      assert.equal(await older.head(db), m!.id);
      await older.close();
      raw.prepare("UPDATE schema_migrations SET compatible = 0 WHERE version = 999").run();
    } finally {
      raw.close();
    }
    const refused = new SqliteStore({ path });
    await assert.rejects(refused.open(), (e: unknown) => {
      assert.ok(e instanceof TidingsError);
      assert.equal(e.code, "TIDINGS_ERR_STORE_SCHEMA");
      assert.match(e.message, /migration 999, 999_later\.sql/);
      return true;
    });
    await refused.close();
  });

  it("never reuses a sequence number after retention removed everything", async () => {
    const path = freshPath();
    const db = freshDb();
    const first = await opened(path);
    const out = await first.append(db, [entry("a"), entry("a")]);
    await first.trim(db, { maxAgeMs: 1, maxCount: 0 }, Date.now() + 1000);
    assert.equal(await first.head(db), null);
    await first.close();
    const second = await opened(path);
    try {
      const res = await second.read(db, { after: out[1]!.id, limit: 10 });
      assert.equal(res.gap, false, "the last removed id is still a known cursor");
      const [next] = await second.append(db, [entry("a")]);
      assert.ok(next!.id > out[1]!.id);
    } finally {
      await second.close();
    }
  });

  it("works in memory and closes twice", async () => {
    const store = await opened(":memory:");
    const db = freshDb();
    const [m] = await store.append(db, [entry("a")]);
    assert.equal(await store.head(db), m!.id);
    await store.close();
    await store.close();
  });
});

describe("one sqlite file, two connections (as two processes have)", () => {
  it("reports the other connection's appends through onAppend, naming the database", async () => {
    const path = freshPath();
    const db = freshDb();
    const a = await opened(path);
    const b = await opened(path);
    const woken: string[] = [];
    a.onAppend((d) => woken.push(d));
    try {
      await b.append(db, [entry("a")]);
      await waitFor(() => woken.includes(db), 5000);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("gives each append the id that precedes it in the log, whichever connection wrote that", async () => {
    const path = freshPath();
    const db = freshDb();
    const a = await opened(path);
    const b = await opened(path);
    try {
      const first = await a.append(db, [entry("a")]);
      assert.equal(first.previous, null, "nothing before the first message");
      const [fromB] = await b.append(db, [entry("a"), entry("b")]).then((r) => r.slice(1));
      const next = await a.append(db, [entry("a")]);
      assert.equal(next.previous, fromB!.id);
      assert.ok(next[0]!.id > fromB!.id, "ids of both connections sort in log order");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("never lets a bus put its own append in its tail before another's earlier one", async () => {
    const path = freshPath();
    // A never hears of B's appends by its timer here: only the append's `previous` can tell it.
    const a = await createBus({ storeInstance: new SqliteStore({ path, watchIntervalMs: 3_600_000 }), databases: ["test"], logLevel: "silent" });
    const b = await createBus({ store: `sqlite:${path}`, databases: ["test"], logLevel: "silent" });
    const got: StoredMessage[] = [];
    try {
      const start = await a.publish("test", "c", { type: "start" });
      const stream = a.stream("test", ["c"], start, { onMessages: (ms) => got.push(...ms) });
      const fromB = await b.publish("test", "c", { type: "b" });
      const fromA = await a.publish("test", "c", { type: "a" });
      await waitFor(() => got.length >= 2, 5000);
      assert.deepEqual(got.map((m) => m.id), [fromB, fromA]);
      stream.close();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
