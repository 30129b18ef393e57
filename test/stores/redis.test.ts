import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { RedisStore } from "../../src/stores/redis/index.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { describeStore, entry, freshDb, parse, sleep, waitFor } from "./conformance.js";

const url = process.env.TIDINGS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
// Every run of this file gets its own keys (and connection names), deleted at the end.
const prefix = `tidings-test:${process.pid}:${randomBytes(4).toString("hex")}:`;

async function unreachable(): Promise<string | false> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch {
    const { hostname, port } = new URL(url);
    return `Redis not reachable at ${hostname}:${port || 6379}`;
  } finally {
    probe.disconnect();
  }
}

// Under CI a missing Redis is a failure, never a skip.
const down = await unreachable();
if (down !== false && process.env.CI === "true") throw new Error(`${down} (CI=true: the Redis engine must be tested)`);
const skip = down;

const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
admin.on("error", () => {});

after(async () => {
  if (skip) return admin.disconnect();
  // Leaks fail the run: every store must have closed its connections.
  let leaked: ClientInfo[] = [];
  for (let i = 0; i < 50; i++) {
    leaked = await clients(prefix);
    if (leaked.length === 0) break;
    await sleep(20);
  }
  await deleteKeys(prefix);
  await deleteKeys(`${prefix}wiped:`);
  admin.disconnect();
  assert.deepEqual(leaked.map((c) => c.name), [], "connections left open");
});

async function deleteKeys(keyPrefix: string): Promise<void> {
  const match = `${keyPrefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", match, "COUNT", 500);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}

interface ClientInfo {
  readonly id: string;
  readonly name: string;
}

/** Connections whose name starts with `namePrefix` (stores name theirs after their key prefix). */
async function clients(namePrefix: string): Promise<ClientInfo[]> {
  const list = (await admin.call("CLIENT", ["LIST"])) as string;
  return list
    .split("\n")
    .map((line) => Object.fromEntries(line.split(" ").map((kv) => kv.split("=", 2) as [string, string])))
    .filter((c) => typeof c.name === "string" && c.name.startsWith(namePrefix))
    .map((c) => ({ id: c.id!, name: c.name! }));
}

async function readAll(store: RedisStore, db: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page = await store.read(db, { after: cursor, limit: 50 });
    assert.equal(page.gap, false);
    if (page.messages.length === 0) return out;
    out.push(...page.messages);
    cursor = page.messages[page.messages.length - 1]!.id;
  }
}

async function openStore(keyPrefix = prefix): Promise<RedisStore> {
  const store = new RedisStore({ url, prefix: keyPrefix });
  await store.open();
  return store;
}

describeStore("redis", {
  create: () => new RedisStore({ url, prefix }),
  reopen: () => new RedisStore({ url, prefix }),
  skip,
});

describe("redis engine", { skip }, () => {
  it("lets claims recorded before claims expired lapse at once, and deletes them", async () => {
    const store = await openStore();
    try {
      const db = freshDb("legacy");
      // As the earlier claim-owner script left them: an owner, no expiry.
      await admin.hset(`${prefix}{${db}}:owners`, "client:legacy", "7");
      assert.equal(await store.trimOwners(db, Date.now()), 1);
      assert.equal(await admin.hexists(`${prefix}{${db}}:owners`, "client:legacy"), 0);
      assert.equal(await store.claimOwner(db, "client:legacy", "8", { now: Date.now(), ttlMs: 60_000, maxPerOwner: 10 }), "8");
    } finally {
      await store.close();
    }
  });

  it("reconnects after CLIENT KILL, wakes every known database and loses nothing", async () => {
    const a = await openStore();
    const b = await openStore();
    try {
      const busy = freshDb("kill");
      const quiet = freshDb("kill");
      const wakes = new Map<string, number>();
      a.onAppend((db) => wakes.set(db, (wakes.get(db) ?? 0) + 1));
      await b.append(quiet, [entry("q")]);

      // b keeps appending while every connection of both stores is killed.
      const acknowledged: string[] = [];
      let failed = 0;
      let stop = false;
      const writer = (async () => {
        for (let n = 0; !stop; n++) {
          try {
            const [m] = await b.append(busy, [entry("k", { n })]);
            acknowledged.push(m!.id);
          } catch {
            failed += 1; // in flight at the kill: outcome unknown, never resent
          }
        }
      })();
      await waitFor(() => (wakes.get(busy) ?? 0) > 0 && (wakes.get(quiet) ?? 0) > 0, 5000);

      const victims = await clients(prefix);
      assert.ok(victims.length >= 4, `both stores' connections found: ${victims.map((c) => c.name).join(", ")}`);
      const quietWakes = wakes.get(quiet)!;
      const ackedAtKill = acknowledged.length;
      for (const c of victims) await admin.call("CLIENT", ["KILL", "ID", c.id]);

      // Nothing was appended to `quiet`: only the reconnect can wake it.
      await waitFor(() => wakes.get(quiet)! > quietWakes, 10_000);
      await waitFor(() => acknowledged.length > ackedAtKill + 20, 10_000);
      const [mine] = await a.append(busy, [entry("k", { from: "a" })]);
      stop = true;
      await writer;

      const log = await readAll(a, busy);
      const ids = log.map((m) => m.id);
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, "one strictly increasing order");
      const ns = log.map((m) => parse(m).n).filter((n) => n !== undefined);
      assert.equal(new Set(ns).size, ns.length, "no append was applied twice");
      const present = new Set(ids);
      for (const id of [...acknowledged, mine!.id]) assert.ok(present.has(id), `acknowledged ${id} is readable`);
      assert.ok(log.length <= acknowledged.length + failed + 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("gives one identical order to every instance sharing a prefix", async () => {
    const stores = await Promise.all([openStore(), openStore(), openStore()]);
    try {
      const db = freshDb("shared");
      const woken = stores.map(() => 0);
      stores.forEach((s, i) => s.onAppend((d) => d === db && (woken[i] = woken[i]! + 1)));
      const results = await Promise.all(
        stores.map(async (s, w) => {
          const ids: string[] = [];
          for (let i = 0; i < 40; i++) {
            const batch = i % 4 === 0 ? [entry(`w${w}`, { w, i }), entry(`w${w}`, { w, i, second: true })] : [entry(`w${w}`, { w, i })];
            for (const m of await s.append(db, batch)) ids.push(m.id);
          }
          return ids;
        }),
      );
      const logs = await Promise.all(stores.map((s) => readAll(s, db)));
      const reference = logs[0]!.map((m) => [m.id, m.json]);
      for (const log of logs) assert.deepEqual(log.map((m) => [m.id, m.json]), reference);
      assert.deepEqual(new Set(reference.map(([id]) => id)), new Set(results.flat()));
      for (let w = 0; w < stores.length; w++) {
        assert.deepEqual(logs[0]!.filter((m) => m.channel === `w${w}`).map((m) => m.id), results[w]);
      }
      await waitFor(() => woken.every((n) => n > 0), 5000);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("keeps the epoch across instances and replaces it when Redis is wiped", async () => {
    const keyPrefix = `${prefix}wiped:`;
    const db = freshDb("epoch");
    const first = await openStore(keyPrefix);
    const [m1] = await first.append(db, [entry("e", { i: 1 })]);
    await first.close();

    const second = await openStore(keyPrefix);
    try {
      const [m2] = await second.append(db, [entry("e", { i: 2 })]);
      const epoch = m1!.id.split(":")[0];
      assert.equal(m2!.id.split(":")[0], epoch);
      assert.equal(await admin.get(`${keyPrefix}epoch`), epoch);
      assert.deepEqual((await second.read(db, { after: m1!.id, limit: 10 })).messages.map((m) => m.id), [m2!.id]);
    } finally {
      await second.close();
    }

    await sleep(2); // epochs are millisecond timestamps
    await deleteKeys(keyPrefix);
    const third = await openStore(keyPrefix);
    try {
      const [m3] = await third.append(db, [entry("e", { i: 3 })]);
      assert.notEqual(m3!.id.split(":")[0], m1!.id.split(":")[0], "a new epoch after the wipe");
      const res = await third.read(db, { after: m1!.id, limit: 10 });
      assert.equal(res.gap, true, "cursors of the old epoch are foreign");
      assert.deepEqual(res.messages.map((m) => m.id), [m3!.id]);
    } finally {
      await third.close();
    }
  });
});
