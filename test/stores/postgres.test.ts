/**
 * The PostgreSQL engine: the conformance suite, then what only a shared SQL store can get
 * wrong — late commits under concurrent publishers, transactional publish, killed
 * connections, messages held back by an open transaction, concurrent migrations.
 * Each run works in a schema of its own, dropped at the end.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import postgres from "postgres";
import { describeStore, entry, freshDb, parse, sleep, waitFor } from "./conformance.js";
import { PostgresStore } from "../../src/stores/postgres/index.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { readMigrations } from "../../src/stores/migrations.js";
import { TidingsError } from "../../src/errors.js";

const MIGRATIONS = readMigrations(new URL("../../src/stores/postgres/sql/", import.meta.url));

const BASE_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = `tidings_test_${process.pid}_${randomBytes(4).toString("hex")}`;
/** Every connection of this file's stores carries this name, so leaks and kills can find them. */
const APP = SCHEMA;

function urlFor(app: string): string {
  const u = new URL(BASE_URL);
  u.searchParams.set("application_name", app);
  return u.toString();
}

function newStore(options: { schema?: string; app?: string; pollIntervalMs?: number } = {}): PostgresStore {
  return new PostgresStore({
    url: urlFor(options.app ?? APP),
    schema: options.schema ?? SCHEMA,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });
}

async function reachable(): Promise<boolean> {
  const probe = postgres(BASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

// Under CI a missing database is a failure, never a silent skip.
const skip =
  process.env.CI === "true" || (await reachable()) ? false : `PostgreSQL not reachable at ${new URL(BASE_URL).host}`;

let admin: postgres.Sql | null = null;
function sqlAdmin(): postgres.Sql {
  admin ??= postgres(urlFor(`${APP}_admin`), { onnotice: () => {} });
  return admin;
}

// Readers only see below the oldest open transaction of the whole cluster, and these tests
// hold transactions open on purpose: runs of this file in other processes (parallel test
// runs on a shared machine) would stall each other's reads. They take turns instead.
let mutex: postgres.Sql | null = null;
before(async () => {
  if (skip) return;
  mutex = postgres(urlFor(`${APP}_admin`), { max: 1, onnotice: () => {} });
  await mutex`SELECT pg_advisory_lock(hashtextextended('tidings.postgres-tests', 0))`;
});

after(async () => {
  try {
    if (admin) {
      await admin`DROP SCHEMA IF EXISTS ${admin(SCHEMA)} CASCADE`;
      await admin`DROP SCHEMA IF EXISTS ${admin(`${SCHEMA}_m`)} CASCADE`;
      await admin`DROP SCHEMA IF EXISTS ${admin(`${SCHEMA}_u`)} CASCADE`;
    }
  } finally {
    await admin?.end({ timeout: 5 });
    await mutex?.end({ timeout: 5 }); // ending the session releases the lock
  }
});

describeStore("postgres", { create: () => newStore(), reopen: () => newStore(), skip });

/**
 * The ids of `db`'s log once `count` are readable: reads stop below the oldest transaction
 * of the whole cluster, which other test runs on a shared server may hold open for a while.
 */
async function idsOnceReadable(store: PostgresStore, db: string, count: number): Promise<string[]> {
  let ids: string[] = [];
  await waitForAsync(async () => {
    ids = (await store.read(db, { after: null, limit: 100 })).messages.map((x) => x.id);
    return ids.length >= count;
  }, 30_000);
  return ids;
}

/** Resolves once `store` can read `db` through `id` (see idsOnceReadable). */
async function readableThrough(store: PostgresStore, db: string, id: string): Promise<void> {
  await waitForAsync(async () => ((await store.head(db)) ?? "") >= id, 30_000);
}

async function waitForAsync(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(20);
  }
}

/** Reads everything after `cursor`, page by page. */
async function drain(store: PostgresStore, db: string, cursor: string | null): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (;;) {
    const page = await store.read(db, { after: cursor, limit: 100 });
    assert.equal(page.gap, false);
    if (page.messages.length === 0) return out;
    out.push(...page.messages);
    cursor = page.messages.at(-1)!.id;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

class Rollback extends Error {}

describe("postgres engine", { skip }, () => {
  it("takes the pool size from ?max= as a number and refuses pools under 4", async () => {
    const withMax = (max: string): PostgresStore => {
      const url = new URL(urlFor(APP));
      url.searchParams.set("max", max);
      return new PostgresStore({ url: url.toString(), schema: SCHEMA });
    };
    for (const bad of ["2", "abc", "1.5"]) {
      await assert.rejects(withMax(bad).open(), { code: "TIDINGS_ERR_CONFIG" }, `max=${bad}`);
    }
    const ok = withMax("6");
    await ok.open();
    try {
      const db = freshDb("pool");
      const [m] = await ok.append(db, [entry("c")]);
      await readableThrough(ok, db, m!.id);
      assert.equal((await ok.read(db, { after: null, limit: 5 })).messages[0]?.id, m!.id);
    } finally {
      await ok.close();
    }
  });

  let writer: PostgresStore;
  before(async () => {
    writer = newStore();
    await writer.open();
  });
  after(async () => {
    await writer?.close();
  });

  it("never skips a transaction that took its id earlier but committed later", async () => {
    const db = freshDb("order");
    const publishers = Array.from({ length: 8 }, () => postgres(urlFor(APP), { max: 1, onnotice: () => {} }));
    const readers = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const s = newStore();
        await s.open();
        return s;
      }),
    );
    const committed = new Set<string>();
    /** Ids in the order their transactions were acknowledged as committed. */
    const commitOrder: string[] = [];
    let publishing = true;
    let newestCommitted: string | undefined;

    async function publish(p: postgres.Sql, tag: string, hold: () => Promise<void>, rollback = false): Promise<void> {
      try {
        const ids = await p.begin(async (tx) => {
          await tx`SELECT pg_current_xact_id()`; // take the transaction id now, commit later
          await hold();
          const out = await writer.appendInTransaction(tx, db, [entry("c", { tag }), entry("c", { tag, second: true })]);
          await hold();
          if (rollback) throw new Rollback();
          return out.map((m) => m.id);
        });
        for (const id of ids) committed.add(id);
        commitOrder.push(...ids);
      } catch (err) {
        if (!(err instanceof Rollback)) throw err;
      }
    }

    // A control that reads by row id alone, as a plain bigserial log would: it must miss some.
    const naiveSeen = new Set<string>();
    const naive = (async () => {
      const a = sqlAdmin();
      let last = "0";
      for (let more = true; more; ) {
        more = publishing; // one last read after the publishers are done
        const rows = await a<{ pos: string; xid: string }[]>`
          SELECT pos::text, xid::text FROM ${a(SCHEMA)}.log WHERE db = ${db} AND pos > ${last}::bigint ORDER BY pos`;
        for (const r of rows) naiveSeen.add(`${r.xid}/${r.pos}`);
        if (rows.length > 0) last = rows.at(-1)!.pos;
        await sleep(1);
      }
    })();

    const seen: StoredMessage[][] = readers.map(() => []);
    const reading = readers.map(async (r, i) => {
      let cursor: string | null = null;
      const deadline = Date.now() + 60_000;
      // Until it holds the newest committed id: a reader that skipped some stops there too.
      while (publishing || cursor !== newestCommitted) {
        assert.ok(Date.now() < deadline, `reader ${i} stalled at ${seen[i]!.length}/${committed.size}`);
        const page = await r.read(db, { after: cursor, limit: 7 });
        assert.equal(page.gap, false, `reader ${i} got a gap`);
        seen[i]!.push(...page.messages);
        if (page.messages.length > 0) cursor = page.messages.at(-1)!.id;
        else await sleep(2);
      }
    });

    try {
      // Phase 1, deterministic: ids taken in publisher order, commits in reverse order.
      const gates = publishers.map(() => deferred());
      const inserted = publishers.map(() => deferred());
      const phase1: Promise<void>[] = [];
      for (const [i, p] of publishers.entries()) {
        let step = 0;
        phase1.push(
          publish(p, `r${i}`, async () => {
            if (step++ === 0) return;
            inserted[i]!.resolve();
            await gates[i]!.promise;
          }),
        );
        // The next one starts once this one holds its id and rows, so ids and row ids ascend.
        await inserted[i]!.promise;
      }
      for (let i = publishers.length - 1; i >= 0; i--) {
        gates[i]!.resolve();
        await sleep(40);
      }
      await Promise.all(phase1);

      // Phase 2, random: overlapping transactions with random holds, some rolled back.
      await Promise.all(
        publishers.map(async (p, i) => {
          for (let n = 0; n < 12; n++) {
            await publish(p, `p${i}.${n}`, () => sleep(Math.random() * 25), Math.random() < 0.15);
          }
        }),
      );
    } finally {
      newestCommitted = [...committed].sort().at(-1);
      publishing = false;
      await Promise.allSettled([naive, ...reading]);
      await Promise.all(publishers.map((p) => p.end({ timeout: 5 })));
      await Promise.all(readers.map((r) => r.close()));
    }
    await naive;
    await Promise.all(reading);

    const ids = seen.map((list) => list.map((m) => m.id));
    for (const [i, list] of ids.entries()) {
      for (let k = 1; k < list.length; k++) assert.ok(list[k - 1]! < list[k]!, `reader ${i}: ids strictly increase`);
      assert.deepEqual(new Set(list), committed, `reader ${i} saw exactly the committed messages`);
      assert.equal(list.length, committed.size, `reader ${i} saw each message once`);
    }
    assert.deepEqual(ids[1], ids[0], "readers agree on one order");
    assert.deepEqual(ids[2], ids[0], "readers agree on one order");

    // The scenario really happened: commits acknowledged out of log order, and a plain
    // bigserial reader lost messages.
    const sorted = [...commitOrder].sort();
    assert.notDeepEqual(commitOrder, sorted, "some transactions committed out of id order");
    assert.ok(naiveSeen.size < committed.size, `the naive reader saw ${naiveSeen.size}/${committed.size}`);
  });

  it("publishes inside the application's transaction, from TypeScript and from SQL", async () => {
    const db = freshDb("tx");
    const a = sqlAdmin();
    const reader = newStore();
    await reader.open();
    try {
      // TypeScript, committed: invisible until the commit, then readable.
      const open = deferred();
      const release = deferred();
      const committing = a.begin(async (tx) => {
        const out = await writer.appendInTransaction(tx, db, [entry("c", { n: 1 })]);
        open.resolve();
        await release.promise;
        return out;
      });
      await open.promise;
      assert.deepEqual((await reader.read(db, { after: null, limit: 10 })).messages, [], "not visible before commit");
      release.resolve();
      const [committed] = await committing;

      // TypeScript, rolled back: nothing.
      await assert.rejects(
        a.begin(async (tx) => {
          await writer.appendInTransaction(tx, db, [entry("c", { n: 2 })]);
          throw new Rollback();
        }),
        Rollback,
      );

      // SQL, committed and rolled back; any message_id is replaced.
      const [published] = await a<{ id: string }[]>`
        SELECT ${a(SCHEMA)}.publish(${db}, 'c', '{"type": "sql", "message_id": "forged", "n": 3}'::jsonb) AS id`;
      const fromSql = published!.id;
      await assert.rejects(
        a.begin(async (tx) => {
          await tx`SELECT ${tx(SCHEMA)}.publish(${db}, 'c', '{"type": "sql", "n": 4}'::jsonb)`;
          throw new Rollback();
        }),
        Rollback,
      );
      // A plain pool handle is a transaction of its own.
      const [viaPool] = await writer.appendInTransaction(a, db, [entry("c", { n: 5 })]);
      await assert.rejects(a`SELECT ${a(SCHEMA)}.publish(${db}, 'c', '{"n": 6}'::jsonb)`, /non-empty string "type"/);

      await readableThrough(reader, db, viaPool!.id);
      const all = await reader.read(db, { after: null, limit: 10 });
      assert.deepEqual(
        all.messages.map((m) => [m.id, m.channel, m.type, parse(m)]),
        [
          [committed!.id, "c", "test", { message_id: committed!.id, type: "test", n: 1 }],
          [fromSql, "c", "sql", { message_id: fromSql, type: "sql", n: 3 }],
          [viaPool!.id, "c", "test", { message_id: viaPool!.id, type: "test", n: 5 }],
        ],
      );
      assert.ok(all.messages[1]!.json.startsWith(`{"message_id":${JSON.stringify(fromSql)}`));
    } finally {
      await reader.close();
    }
  });

  it("recovers after its connections are terminated, wakes listeners and loses nothing", async () => {
    const db = freshDb("kill");
    const app = `${APP}_victim`;
    const victim = newStore({ app, pollIntervalMs: 60_000 });
    await victim.open();
    const woken: string[] = [];
    victim.onAppend((d) => d === db && woken.push(d));
    try {
      const before = await writer.append(db, [entry("c", { n: 0 })]);
      await readableThrough(victim, db, before.at(-1)!.id);
      const first = await drain(victim, db, null);
      assert.deepEqual(first.map((m) => m.id), before.map((m) => m.id));
      await waitFor(() => woken.length > 0, 5000);

      // Counts are taken before acting: a NOTIFY can arrive before the append's own reply.
      const a = sqlAdmin();
      const wokenAtKill = woken.length;
      const killed = await a`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${app}`;
      assert.ok(killed.length >= 2, `the pool and the LISTEN connection were killed (${killed.length})`);
      // Reads right away, racing the dying backends: reads retry on a lost connection.
      assert.deepEqual(await drain(victim, db, first.at(-1)!.id), []);
      // postgres.js re-LISTENs; the store wakes every known database to re-read.
      await waitFor(() => woken.length > wokenAtKill, 10_000);

      const wokenAtAppend = woken.length;
      const later = await writer.append(db, [entry("c", { n: 1 }), entry("c", { n: 2 })]);
      await waitFor(() => woken.length > wokenAtAppend, 10_000);
      await readableThrough(victim, db, later.at(-1)!.id);
      const rest = await drain(victim, db, first.at(-1)!.id);
      assert.deepEqual(rest.map((m) => m.id), later.map((m) => m.id));
      // Writes are not retried (they may have committed), but work again once reconnected.
      const own = await victim.append(db, [entry("c", { n: 3 })]);
      await readableThrough(victim, db, own.at(-1)!.id);
      assert.deepEqual((await drain(victim, db, rest.at(-1)!.id)).map((m) => m.id), own.map((m) => m.id));
    } finally {
      await victim.close();
    }
  });

  it("survives connections killed while they start: no array-type query on a reconnect, no unhandled rejection", async () => {
    // postgres.js runs that query on each new connection and drops its promise, so a
    // connection killed during it used to end the process (porsager/postgres#1192).
    const db = freshDb("restart");
    const target = new URL(BASE_URL);
    let armed = false;
    let typeQueries = 0;
    const sockets = new Set<Socket>();
    const proxy = createNetServer((inbound) => {
      const outbound = connect(Number(target.port || 5432), target.hostname);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => [inbound, outbound].forEach((x) => x.destroy()));
      }
      inbound.on("data", (chunk: Buffer) => {
        // Armed, it kills every connection that asks for the array types, as a terminated backend would.
        if (armed && chunk.includes("typarray")) {
          typeQueries++;
          inbound.destroy();
          outbound.destroy();
          return;
        }
        outbound.write(chunk);
      });
      outbound.pipe(inbound);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const viaProxy = new URL(urlFor(`${APP}_proxied`));
    viaProxy.host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    const store = new PostgresStore({ url: viaProxy.toString(), schema: SCHEMA });
    try {
      await store.open();
      armed = true;
      for (const s of sockets) s.destroy();
      // Writes are not retried: the first after the cut may meet a connection that died under it.
      // Without the fix, every reconnect dies at the array types and the append never settles.
      const deadline = Date.now() + 10_000;
      let stored: StoredMessage[] | undefined;
      while (stored === undefined) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no append within 10 s; ${typeQueries} reconnects asked for the array types`)), 10_000);
        });
        try {
          stored = await Promise.race([store.append(db, [entry("c", { n: 1 })]), late]);
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await sleep(50);
        } finally {
          clearTimeout(timer);
        }
      }
      await readableThrough(store, db, stored.at(-1)!.id);
      assert.deepEqual((await drain(store, db, null)).map((m) => m.id), stored.map((m) => m.id));
      await sleep(100);
      assert.equal(typeQueries, 0, "a reconnected connection asked for the array types again");
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await store.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it("wakes listeners when a message held back by an older open transaction becomes readable", async () => {
    const db = freshDb("held");
    const reader = newStore({ pollIntervalMs: 60_000 }); // the slow safety net must not be what helps
    await reader.open();
    const woken: number[] = [];
    reader.onAppend((d) => d === db && woken.push(Date.now()));
    const a = sqlAdmin();
    try {
      for (const publishesToo of [false, true]) {
        const cursor = await reader.head(db);
        const holding = deferred();
        const release = deferred();
        // The older transaction takes its id first and stays open.
        const older = a.begin(async (tx): Promise<StoredMessage[]> => {
          await tx`SELECT pg_current_xact_id()`;
          holding.resolve();
          await release.promise;
          return publishesToo ? writer.appendInTransaction(tx, db, [entry("c", { older: true })]) : [];
        });
        await holding.promise;
        const [m] = await writer.append(db, [entry("c", { newer: true })]);
        await waitFor(() => woken.length > 0, 5000);
        const held = await reader.read(db, { after: cursor, limit: 10 });
        assert.deepEqual(held.messages, [], "committed but behind the open transaction");
        assert.equal(await reader.head(db), cursor, "the head waits too");

        const wokenBefore = woken.length;
        release.resolve();
        const fromOlder = await older;
        const releasedAt = Date.now();
        await waitFor(() => woken.length > wokenBefore, 5000);
        assert.ok(woken.at(-1)! - releasedAt < 2000, "woken soon after the commit");
        const now = await reader.read(db, { after: cursor, limit: 10 });
        // Log order is transaction order: the older transaction's message comes first.
        assert.deepEqual(now.messages.map((x) => x.id), [...fromOlder.map((x) => x.id), m!.id]);
        woken.length = 0;
      }
    } finally {
      await reader.close();
    }
  });

  it("wakes listeners from the safety-net poll when a notification was lost", async () => {
    const db = freshDb("poll");
    const reader = newStore({ pollIntervalMs: 100 });
    await reader.open();
    const woken: string[] = [];
    reader.onAppend((d) => d === db && woken.push(d));
    try {
      assert.equal(await reader.head(db), null); // the reader now knows the database
      await sleep(250); // let the poll record its head
      woken.length = 0;
      // A row written without NOTIFY, as if the notification was sent while LISTEN was down.
      const a = sqlAdmin();
      await a`INSERT INTO ${a(SCHEMA)}.log (db, channel, type, payload) VALUES (${db}, 'c', 'test', '{"type":"test"}')`;
      await waitFor(() => woken.length > 0, 3000);
      assert.equal((await reader.read(db, { after: null, limit: 10 })).messages.length, 1);
    } finally {
      await reader.close();
    }
  });

  it("trims in one instance at a time", async () => {
    const db = freshDb("trim");
    const out = await writer.append(db, Array.from({ length: 5 }, (_, i) => entry("c", { i })));
    // Trimming removes only what is readable.
    await readableThrough(writer, db, out.at(-1)!.id);
    const a = sqlAdmin();
    const locked = deferred();
    const release = deferred();
    const other = a.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`tidings.trim:${SCHEMA}:${db}`}, 0))`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    assert.equal(await writer.trim(db, { maxAgeMs: 0, maxCount: 2 }, Date.now()), 0, "another instance is trimming");
    release.resolve();
    await other;
    assert.equal(await writer.trim(db, { maxAgeMs: 0, maxCount: 2 }, Date.now()), 3);
  });

  it("runs migrations from several instances at once", async () => {
    const schema = `${SCHEMA}_m`;
    const stores = [0, 1, 2].map(() => newStore({ schema }));
    try {
      await Promise.all(stores.map((s) => s.open()));
      const db = freshDb("mig");
      const [m] = await stores[0]!.append(db, [entry("c")]);
      for (const s of stores) assert.deepEqual(await idsOnceReadable(s, db, 1), [m!.id]);
      const a = sqlAdmin();
      const versions = await a<{ version: number }[]>`SELECT version FROM ${a(schema)}.schema_migrations ORDER BY version`;
      assert.deepEqual(versions.map((v) => v.version), MIGRATIONS.map((m) => m.version));
      // Claims (migration 5) from every instance agree on one owner.
      const policy = { now: Date.now(), ttlMs: 60_000, maxPerOwner: 10 };
      const owners = await Promise.all(stores.map((s, i) => s.claimOwner(db, "client:m", String(i), policy)));
      assert.equal(new Set(owners).size, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("upgrades a schema whose claims never expired, from several instances at once", async () => {
    const schema = `${SCHEMA}_u`;
    const first = newStore({ schema });
    await first.open();
    await first.close();
    // Back to the schema as migration 4 left it, with a claim recorded then.
    const a = sqlAdmin();
    const db = freshDb("upg");
    await a.begin(async (tx) => {
      await tx`DROP FUNCTION ${a(schema)}.claim_owner`;
      await tx`ALTER TABLE ${a(schema)}.owners DROP COLUMN expires_at`;
      await tx`DELETE FROM ${a(schema)}.schema_migrations WHERE version = 5`;
      await tx`INSERT INTO ${a(schema)}.owners (db, key, owner) VALUES (${db}, 'client:legacy', '7')`;
    });
    const stores = [0, 1, 2].map(() => newStore({ schema }));
    try {
      await Promise.all(stores.map((s) => s.open()));
      const versions = await a<{ version: number }[]>`SELECT version FROM ${a(schema)}.schema_migrations ORDER BY version`;
      assert.deepEqual(versions.map((v) => v.version), [1, 2, 3, 4, 5]);
      assert.equal(await stores[1]!.trimOwners(db, Date.now()), 1, "the old claim lapsed at the upgrade and is deleted");
      const owner = await stores[2]!.claimOwner(db, "client:legacy", "8", { now: Date.now(), ttlMs: 60_000, maxPerOwner: 10 });
      assert.equal(owner, "8");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("starts next to a newer schema whose unknown migrations were declared compatible (rolling upgrade)", async () => {
    const schema = `${SCHEMA}_m`;
    const a = sqlAdmin();
    const first = newStore({ schema });
    await first.open();
    await first.close();
    const next = MIGRATIONS.at(-1)!.version + 1;
    await a`INSERT INTO ${a(schema)}.schema_migrations (version, name, compatible) VALUES (${next}, ${`${next}_from_the_future.sql`}, true)`;
    const older = newStore({ schema });
    try {
      await older.open();
      assert.deepEqual(older.newerMigrations.map((m) => m.version), [next]);
      const db = freshDb("rolling");
      const [m] = await older.append(db, [entry("c")]);
      assert.deepEqual(await idsOnceReadable(older, db, 1), [m!.id]);
    } finally {
      await older.close();
    }
    // A breaking one stops the older version with a sentence naming it.
    await a`UPDATE ${a(schema)}.schema_migrations SET compatible = false WHERE version = ${next}`;
    const refused = newStore({ schema });
    try {
      await assert.rejects(refused.open(), (e: unknown) => {
        assert.ok(e instanceof TidingsError);
        assert.equal(e.code, "TIDINGS_ERR_STORE_SCHEMA");
        assert.match(e.message, new RegExp(`migration ${next}, ${next}_from_the_future\\.sql`));
        return true;
      });
    } finally {
      await refused.close();
      await a`DELETE FROM ${a(schema)}.schema_migrations WHERE version = ${next}`;
    }
  });

  it("reports the horizon lag", async () => {
    const a = sqlAdmin();
    const holding = deferred();
    const release = deferred();
    const older = a.begin(async (tx) => {
      await tx`SELECT pg_current_xact_id()`;
      holding.resolve();
      await release.promise;
    });
    await holding.promise;
    await sleep(50);
    const lag = await writer.horizonLag();
    release.resolve();
    await older;
    assert.ok(lag >= 40, `lag: ${lag} ms`);
  });

  it("leaves no connection open after close", async () => {
    const s = newStore();
    await s.open();
    await s.close();
    await s.close(); // safe twice
    await writer.close();
    const a = sqlAdmin();
    const deadline = Date.now() + 5000;
    for (;;) {
      const [row] = await a<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE starts_with(application_name, ${APP}) AND application_name <> ${`${APP}_admin`}`;
      if (row!.n === 0) break;
      assert.ok(Date.now() < deadline, `${row!.n} connections left open`);
      await sleep(50);
    }
  });
});
