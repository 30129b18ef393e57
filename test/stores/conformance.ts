/**
 * The store contract as tests. Every engine runs `describeStore` from its own test file:
 *
 *   describeStore("sqlite", { create: () => new SqliteStore(...), reopen: ... });
 *
 * The memory engine is the reference: a test here that it passes and another engine
 * fails is a bug in that engine.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type {
  AppendEntry,
  CommandFilter,
  CommandRecord,
  NewCommand,
  Store,
  StoredMessage,
} from "../../src/stores/store.js";

export interface StoreHarness {
  /** A fresh, empty, unopened store isolated from every other test file. */
  create(): Store | Promise<Store>;
  /**
   * For durable engines: a new store on the same data as `store` (which is already
   * closed), as after a process restart. Leave undefined for the memory engine.
   */
  reopen?(): Store | Promise<Store>;
  /** A reason to skip the whole suite (engine not reachable), or false. */
  skip?: string | false;
}

export function entry(channel: string, body: Record<string, unknown> = {}, type = "test"): AppendEntry {
  return { channel, type, payload: JSON.stringify({ type, ...body }) };
}

export function parse(m: StoredMessage): Record<string, unknown> {
  return JSON.parse(m.json) as Record<string, unknown>;
}

/** A pending command to `address` with a fresh id, created at a fixed time unless overridden. */
export function newCommand(address: string, over: Partial<NewCommand> = {}): NewCommand {
  return {
    id: randomUUID(),
    address,
    method: "ping",
    args: "[]",
    deadline: null,
    idempotencyKey: null,
    now: 1_700_000_000_000,
    ...over,
  };
}

let dbCounter = 0;
/** A database name unique within this process, so tests in one suite never see each other. */
export function freshDb(prefix = "db"): string {
  dbCounter += 1;
  return `${prefix}_${process.pid}_${dbCounter}`;
}

export function describeStore(name: string, harness: StoreHarness): void {
  describe(`store conformance: ${name}`, { skip: harness.skip ?? false }, () => {
    let store: Store;
    before(async () => {
      store = appendsReadable(await harness.create());
      await store.open();
    });
    after(async () => {
      await store?.close();
    });

    describe("append and read", () => {
      it("assigns increasing ids, stamps time and puts message_id first in the JSON", async () => {
        const db = freshDb();
        const t0 = Date.now();
        const out = await store.append(db, [entry("a", { n: 1 }), entry("b", { n: 2 }), entry("a", { n: 3 })]);
        assert.equal(out.length, 3);
        assert.ok(out[0]!.id < out[1]!.id && out[1]!.id < out[2]!.id, "ids sort in log order");
        for (const m of out) {
          assert.ok(m.ts >= t0 - 1000 && m.ts <= Date.now() + 1000, "timestamp is now");
          assert.ok(m.json.startsWith(`{"message_id":${JSON.stringify(m.id)}`));
          assert.equal(parse(m).message_id, m.id);
        }
        assert.deepEqual(out.map((m) => [m.channel, m.type, parse(m).n]), [
          ["a", "test", 1],
          ["b", "test", 2],
          ["a", "test", 3],
        ]);
      });

      it("keeps an empty payload and arbitrary JSON (Tryton type hints) intact", async () => {
        const db = freshDb();
        const payload = {
          type: "x",
          when: { __class__: "datetime", year: 2026, month: 11, day: 23, hour: 1, minute: 2, second: 3, microsecond: 4 },
          amount: { __class__: "Decimal", decimal: "12.30" },
          text: "é ünïcode \u2028 \"quoted\"",
        };
        const [m] = await store.append(db, [{ channel: "c", type: "x", payload: JSON.stringify(payload) }]);
        const [empty] = await store.append(db, [{ channel: "c", type: "x", payload: "{}" }]);
        const read = await store.read(db, { after: null, limit: 10 });
        assert.deepEqual(read.messages.map(parse), [
          { message_id: m!.id, ...payload },
          { message_id: empty!.id },
        ]);
      });

      it("reads after a cursor, by channel, up to a limit", async () => {
        const db = freshDb();
        const out = await store.append(db, Array.from({ length: 10 }, (_, i) => entry(i % 2 ? "odd" : "even", { i })));
        const all = await store.read(db, { after: null, limit: 100 });
        assert.deepEqual(all.messages.map((m) => m.id), out.map((m) => m.id));
        assert.equal(all.gap, false);

        const afterThird = await store.read(db, { after: out[2]!.id, limit: 100 });
        assert.deepEqual(afterThird.messages.map((m) => parse(m).i), [3, 4, 5, 6, 7, 8, 9]);
        assert.equal(afterThird.gap, false);

        const odd = await store.read(db, { after: out[2]!.id, channels: ["odd"], limit: 2 });
        assert.deepEqual(odd.messages.map((m) => parse(m).i), [3, 5]);

        const none = await store.read(db, { after: out[9]!.id, limit: 100 });
        assert.deepEqual(none.messages, []);
        assert.equal(none.gap, false);

        const several = await store.read(db, { after: null, channels: ["odd", "even", "nothing"], limit: 3 });
        assert.deepEqual(several.messages.map((m) => parse(m).i), [0, 1, 2]);
      });

      it("reads from a time when there is no cursor", async () => {
        const db = freshDb();
        await store.append(db, [entry("a", { i: 1 })]);
        await sleep(30);
        const since = Date.now();
        await sleep(5);
        await store.append(db, [entry("a", { i: 2 }), entry("a", { i: 3 })]);
        const res = await store.read(db, { after: null, sinceTs: since, limit: 10 });
        assert.deepEqual(res.messages.map((m) => parse(m).i), [2, 3]);
        assert.equal(res.gap, false);
      });

      it("reports the head and keeps databases apart", async () => {
        const a = freshDb();
        const b = freshDb();
        assert.equal(await store.head(a), null);
        const [m1] = await store.append(a, [entry("x", { i: 1 })]);
        assert.equal(await store.head(a), m1!.id);
        assert.equal(await store.head(b), null);
        assert.deepEqual((await store.read(b, { after: null, limit: 10 })).messages, []);
        const [m2] = await store.append(b, [entry("x", { i: 2 })]);
        assert.equal(await store.head(b), m2!.id);
        assert.deepEqual((await store.read(a, { after: null, limit: 10 })).messages.map((m) => m.id), [m1!.id]);
      });

      it("loses nothing and keeps one order under concurrent appends", async () => {
        const db = freshDb();
        const writers = 20;
        const perWriter = 25;
        const results = await Promise.all(
          Array.from({ length: writers }, (_, w) =>
            (async () => {
              const ids: string[] = [];
              for (let i = 0; i < perWriter; i++) {
                const batch = i % 5 === 0 ? [entry(`w${w}`, { w, i }), entry(`w${w}`, { w, i, second: true })] : [entry(`w${w}`, { w, i })];
                for (const m of await store.append(db, batch)) ids.push(m.id);
              }
              return ids;
            })(),
          ),
        );
        const acknowledged = results.flat();
        const read: StoredMessage[] = [];
        let cursor: string | null = null;
        for (;;) {
          const page = await store.read(db, { after: cursor, limit: 97 });
          assert.equal(page.gap, false);
          if (page.messages.length === 0) break;
          read.push(...page.messages);
          cursor = page.messages[page.messages.length - 1]!.id;
        }
        assert.equal(read.length, acknowledged.length, "every acknowledged message is in the log");
        assert.equal(new Set(read.map((m) => m.id)).size, read.length, "no id is used twice");
        for (let i = 1; i < read.length; i++) assert.ok(read[i - 1]!.id < read[i]!.id, "ids strictly increase");
        assert.deepEqual(new Set(read.map((m) => m.id)), new Set(acknowledged));
        // Each writer's messages appear in the order it appended them.
        for (let w = 0; w < writers; w++) {
          const mine = read.filter((m) => m.channel === `w${w}`).map((m) => m.id);
          assert.deepEqual(mine, results[w]);
        }
      });

      it("notifies onAppend listeners with the database name", async () => {
        const db = freshDb();
        const seen: string[] = [];
        const off = store.onAppend((d) => {
          if (d === db) seen.push(d);
        });
        try {
          await store.append(db, [entry("a")]);
          await waitFor(() => seen.length > 0, 5000);
          assert.equal(seen[0], db);
        } finally {
          off();
        }
        const before = seen.length;
        await store.append(db, [entry("a")]);
        await sleep(100);
        assert.equal(seen.length, before, "no call after unsubscribing");
      });
    });

    describe("gaps and retention", () => {
      it("signals a gap for a foreign, malformed or future cursor and reads from the oldest", async () => {
        const db = freshDb();
        const out = await store.append(db, [entry("a", { i: 0 }), entry("a", { i: 1 })]);
        const foreign = `zzzzzzzzz:${out[0]!.id.slice(out[0]!.id.indexOf(":") + 1)}`;
        for (const cursor of [foreign, "not-an-id", "", "0123456789abcdef0123456789abcdef"]) {
          const res = await store.read(db, { after: cursor, limit: 10 });
          assert.equal(res.gap, true, `cursor ${JSON.stringify(cursor)} is unknown`);
          assert.deepEqual(res.messages.map((m) => m.id), out.map((m) => m.id));
        }
      });

      it("trims by count and signals a gap to a cursor older than what is kept", async () => {
        const db = freshDb();
        const out = await store.append(db, Array.from({ length: 10 }, (_, i) => entry("a", { i })));
        const removed = await store.trim(db, { maxAgeMs: 0, maxCount: 4 }, Date.now());
        assert.equal(removed, 6);
        const all = await store.read(db, { after: null, limit: 100 });
        assert.deepEqual(all.messages.map((m) => parse(m).i), [6, 7, 8, 9]);

        const old = await store.read(db, { after: out[2]!.id, limit: 100 });
        assert.equal(old.gap, true, "messages after the cursor were removed");
        assert.deepEqual(old.messages.map((m) => parse(m).i), [6, 7, 8, 9]);

        // The last removed message is still a valid cursor: nothing after it was lost.
        const seam = await store.read(db, { after: out[5]!.id, limit: 100 });
        assert.equal(seam.gap, false);
        assert.deepEqual(seam.messages.map((m) => parse(m).i), [6, 7, 8, 9]);

        assert.equal(await store.head(db), out[9]!.id);
        const [next] = await store.append(db, [entry("a", { i: 10 })]);
        assert.ok(next!.id > out[9]!.id, "ids keep increasing after trimming");
      });

      it("trims by age", async () => {
        const db = freshDb();
        await store.append(db, [entry("a", { i: 0 }), entry("a", { i: 1 })]);
        await sleep(60);
        await store.append(db, [entry("a", { i: 2 })]);
        const removed = await store.trim(db, { maxAgeMs: 40, maxCount: 0 }, Date.now());
        assert.equal(removed, 2);
        const all = await store.read(db, { after: null, limit: 100 });
        assert.deepEqual(all.messages.map((m) => parse(m).i), [2]);
        assert.equal(await store.trim(db, { maxAgeMs: 0, maxCount: 0 }, Date.now()), 0, "a policy of zeros keeps all");
      });

      it("trimming everything keeps the head's successor valid and the old cursor known", async () => {
        const db = freshDb();
        const out = await store.append(db, [entry("a", { i: 0 }), entry("a", { i: 1 })]);
        assert.equal(await store.trim(db, { maxAgeMs: 0, maxCount: 1 }, Date.now()), 1);
        const res = await store.read(db, { after: out[1]!.id, limit: 10 });
        assert.equal(res.gap, false);
        assert.deepEqual(res.messages, []);
      });
    });

    describe("ownership", () => {
      const T = 1_700_000_000_000;
      const TTL = 1000;
      const policy = (now: number, maxPerOwner = 100) => ({ now, ttlMs: TTL, maxPerOwner });

      it("records the first owner and keeps it", async () => {
        const db = freshDb();
        assert.equal(await store.claimOwner(db, "client:abc", "7", policy(T)), "7");
        assert.equal(await store.claimOwner(db, "client:abc", "8", policy(T)), "7");
        assert.equal(await store.claimOwner(freshDb(), "client:abc", "8", policy(T)), "8", "per database");
        const racers = await Promise.all(["1", "2", "3", "4"].map((u) => store.claimOwner(db, "client:race", u, policy(T))));
        assert.equal(new Set(racers).size, 1, "concurrent claims agree on one owner");
      });

      it("lets a claim lapse ttl after its owner's last claim, and each claim by the owner renews it", async () => {
        const db = freshDb();
        assert.equal(await store.claimOwner(db, "client:k", "7", policy(T)), "7");
        assert.equal(await store.claimOwner(db, "client:k", "8", policy(T + TTL - 1)), "7", "alive until its expiry");
        assert.equal(await store.claimOwner(db, "client:k", "7", policy(T + TTL - 1)), "7", "renewed by its owner");
        assert.equal(await store.claimOwner(db, "client:k", "8", policy(T + 2 * TTL - 2)), "7", "alive a ttl after the renewal");
        assert.equal(await store.claimOwner(db, "client:k", "8", policy(T + 2 * TTL - 1)), "8", "lapsed: the next caller takes it");
        assert.equal(await store.claimOwner(db, "client:k", "7", policy(T + 2 * TTL)), "8");
      });

      it("frees an owner's least recently renewed claim past the cap, never another owner's", async () => {
        const db = freshDb();
        assert.equal(await store.claimOwner(db, "client:other", "8", policy(T)), "8");
        for (const [i, key] of ["client:a", "client:b", "client:c"].entries()) {
          assert.equal(await store.claimOwner(db, key, "7", policy(T + i, 3)), "7");
        }
        assert.equal(await store.claimOwner(db, "client:a", "7", policy(T + 3, 3)), "7", "a renewed: b is now the least recent");
        assert.equal(await store.claimOwner(db, "client:d", "7", policy(T + 4, 3)), "7");
        assert.equal(await store.claimOwner(db, "client:b", "9", policy(T + 5, 3)), "9", "b was freed");
        for (const key of ["client:a", "client:c", "client:d"]) {
          assert.equal(await store.claimOwner(db, key, "9", policy(T + 5, 3)), "7", `${key} kept`);
        }
        assert.equal(await store.claimOwner(db, "client:other", "9", policy(T + 5, 3)), "8", "another owner's claim is not counted");
        // Many more claims than the cap: the owner holds the newest ones, each usable.
        for (let i = 0; i < 20; i++) assert.equal(await store.claimOwner(db, `client:n${i}`, "7", policy(T + 10 + i, 3)), "7");
        for (let i = 0; i < 17; i++) assert.equal(await store.claimOwner(db, `client:n${i}`, "9", policy(T + 40, 3)), "9", `n${i} freed`);
        for (let i = 17; i < 20; i++) assert.equal(await store.claimOwner(db, `client:n${i}`, "9", policy(T + 40, 3)), "7", `n${i} kept`);
      });

      it("deletes lapsed claims when trimmed, and only those", async () => {
        const db = freshDb();
        const other = freshDb();
        for (let i = 0; i < 50; i++) await store.claimOwner(db, `client:old${i}`, String(i % 5), policy(T));
        await store.claimOwner(db, "client:fresh", "7", policy(T + TTL));
        await store.claimOwner(other, "client:old0", "0", policy(T));
        assert.equal(await store.trimOwners(db, T + TTL), 50);
        assert.equal(await store.trimOwners(db, T + TTL), 0, "deleted, not only ignored");
        assert.equal(await store.claimOwner(db, "client:fresh", "8", policy(T + TTL)), "7", "a live claim stays");
        assert.equal(await store.claimOwner(db, "client:old3", "8", policy(T + TTL)), "8");
        assert.equal(await store.trimOwners(other, T + TTL - 1), 0, "per database");
        assert.equal(await store.trimOwners(other, T + TTL), 1);
      });
    });

    describe("commands", () => {
      // Commands take `now` from the caller, so the tests drive time explicitly.
      const T = 1_700_000_000_000;
      const LEASE = 1000;

      async function create(db: string, address: string, over: Partial<NewCommand> = {}): Promise<CommandRecord> {
        const res = await store.createCommand(db, newCommand(address, over));
        assert.equal(res.created, true);
        return res.command;
      }

      async function claim(db: string, address: string, claimer: string, now = T, limit = 10): Promise<string[]> {
        return (await store.claimCommands(db, address, claimer, limit, now, LEASE)).map((c) => c.id);
      }

      async function state(db: string, id: string): Promise<string | undefined> {
        return (await store.getCommand(db, id))?.state;
      }

      it("creates a pending command and returns the same one for a repeated idempotency key", async () => {
        const db = freshDb();
        const id = randomUUID();
        const args = JSON.stringify([1, { text: "é \u2028" }]);
        const first = await store.createCommand(
          db,
          newCommand("bot:1", { id, args, deadline: T + 5000, idempotencyKey: "k1" }),
        );
        assert.equal(first.created, true);
        assert.deepEqual(first.command, {
          id,
          db,
          address: "bot:1",
          method: "ping",
          args,
          state: "pending",
          result: null,
          error: null,
          idempotencyKey: "k1",
          deadline: T + 5000,
          attempts: 0,
          claimedBy: null,
          leaseUntil: null,
          createdAt: T,
          deliveredAt: null,
          startedAt: null,
          finishedAt: null,
        });
        assert.deepEqual(await store.getCommand(db, id), first.command);

        const again = await store.createCommand(db, newCommand("bot:1", { idempotencyKey: "k1", now: T + 1 }));
        assert.equal(again.created, false);
        assert.deepEqual(again.command, first.command, "the existing command, unchanged");

        const otherAddress = await store.createCommand(db, newCommand("bot:2", { idempotencyKey: "k1" }));
        assert.equal(otherAddress.created, true, "keys are per address");
        const otherDb = await store.createCommand(freshDb(), newCommand("bot:1", { idempotencyKey: "k1" }));
        assert.equal(otherDb.created, true, "keys are per database");
        const noKey = [await create(db, "bot:1"), await create(db, "bot:1")];
        assert.notEqual(noKey[0]!.id, noKey[1]!.id, "commands without a key never collide");

        assert.deepEqual(await store.findCommandByKey(db, "bot:1", "k1"), first.command, "found by its key");
        assert.equal((await store.findCommandByKey(db, "bot:2", "k1"))?.id, otherAddress.command.id);
        assert.equal(await store.findCommandByKey(db, "bot:1", "k2"), null);
        assert.equal(await store.findCommandByKey(db, "bot:3", "k1"), null, "a key of another address is not found");

        assert.equal(await store.getCommand(db, randomUUID()), null);
        assert.equal(await store.countOpenCommands(db, "bot:1"), 3);
        await store.finishCommand(db, id, { state: "cancelled" }, null, T + 2);
        assert.equal((await store.findCommandByKey(db, "bot:1", "k1"))?.state, "cancelled", "found whatever its state");
      });

      it("lists newest first with address, state and time filters and a limit", async () => {
        const db = freshDb();
        const a1 = await create(db, "a", { now: T });
        const a2 = await create(db, "a", { now: T + 10 });
        const b1 = await create(db, "b", { now: T + 20 });
        const a3 = await create(db, "a", { now: T + 30 });
        const a4 = await create(db, "a", { now: T + 30 }); // same time: the later one first
        const ids = async (filter: Omit<CommandFilter, "limit"> & { limit?: number }): Promise<string[]> =>
          (await store.listCommands(db, { limit: 100, ...filter })).map((c) => c.id);

        assert.deepEqual(await ids({}), [a4.id, a3.id, b1.id, a2.id, a1.id]);
        assert.deepEqual(await ids({ limit: 2 }), [a4.id, a3.id]);
        assert.deepEqual(await ids({ address: "a" }), [a4.id, a3.id, a2.id, a1.id]);
        assert.deepEqual(await ids({ address: "a", limit: 3 }), [a4.id, a3.id, a2.id]);
        assert.deepEqual(await ids({ since: T + 10, until: T + 30 }), [b1.id, a2.id], "since inclusive, until exclusive");
        assert.deepEqual(await ids({ address: "a", since: T + 10 }), [a4.id, a3.id, a2.id]);
        assert.deepEqual(await ids({ until: T + 10 }), [a1.id]);

        await claim(db, "b", "conn1");
        await store.finishCommand(db, a2.id, { state: "cancelled" }, null, T + 40);
        assert.deepEqual(await ids({ states: ["delivered"] }), [b1.id]);
        assert.deepEqual(await ids({ states: ["pending"], address: "a" }), [a4.id, a3.id, a1.id]);
        assert.deepEqual(await ids({ states: ["cancelled", "delivered"] }), [b1.id, a2.id]);
        assert.deepEqual(await ids({ states: [] }), []);
        assert.deepEqual(await ids({ address: "nobody" }), []);
        assert.deepEqual(await store.listCommands(freshDb(), { limit: 100 }), [], "per database");
        assert.equal((await store.listCommands(db, { limit: 100 })).every((c) => c.db === db), true);
      });

      it("counts the commands of an address that are not final", async () => {
        const db = freshDb();
        const c1 = await create(db, "a");
        const c2 = await create(db, "a");
        await create(db, "a");
        await create(db, "b");
        assert.equal(await store.countOpenCommands(db, "a"), 3);
        await store.claimCommands(db, "a", "conn1", 1, T, LEASE);
        await store.startCommand(db, c1.id, "conn1", T);
        assert.equal(await store.countOpenCommands(db, "a"), 3, "delivered and running are open");
        await store.finishCommand(db, c1.id, { state: "succeeded", result: "1" }, "conn1", T);
        await store.finishCommand(db, c2.id, { state: "cancelled" }, null, T);
        assert.equal(await store.countOpenCommands(db, "a"), 1);
        assert.equal(await store.countOpenCommands(db, "b"), 1);
        assert.equal(await store.countOpenCommands(db, "nobody"), 0);
        assert.equal(await store.countOpenCommands(freshDb(), "a"), 0);
      });

      it("claims pending commands oldest first, up to the limit, under a lease", async () => {
        const db = freshDb();
        // Created out of time order: "oldest" is by createdAt, not by insertion.
        const middle = await create(db, "a", { now: T + 2 });
        const oldest = await create(db, "a", { now: T + 1 });
        const newest = await create(db, "a", { now: T + 3 });
        await create(db, "b", { now: T });

        const got = await store.claimCommands(db, "a", "conn1", 2, T + 100, LEASE);
        assert.deepEqual(got.map((c) => c.id), [oldest.id, middle.id]);
        for (const c of got) {
          assert.equal(c.state, "delivered");
          assert.equal(c.attempts, 1);
          assert.equal(c.claimedBy, "conn1");
          assert.equal(c.leaseUntil, T + 100 + LEASE);
          assert.equal(c.deliveredAt, T + 100);
          assert.equal(c.db, db);
        }
        assert.deepEqual(await store.getCommand(db, oldest.id), got[0]);

        assert.deepEqual(await claim(db, "a", "conn2", T + 200), [newest.id], "leased ones are not taken");
        assert.deepEqual(await claim(db, "a", "conn3", T + 300), []);
        assert.deepEqual(await store.claimCommands(db, "b", "conn1", 0, T, LEASE), [], "a limit of 0 takes none");
        assert.deepEqual(await claim(freshDb(), "a", "conn1"), [], "per database");
      });

      it("never gives one command to two concurrent claimers", async () => {
        const db = freshDb();
        const all = [];
        for (let i = 0; i < 20; i++) all.push((await create(db, "a", { now: T + i })).id);
        const claimers = Array.from({ length: 8 }, (_, i) => `conn${i}`);
        const results = await Promise.all(claimers.map((c) => store.claimCommands(db, "a", c, 5, T + 100, LEASE)));
        const got = results.flat();
        assert.equal(got.length, all.length, "together they take every command once");
        assert.deepEqual(new Set(got.map((c) => c.id)), new Set(all));
        results.forEach((list, i) => {
          for (const c of list) assert.equal(c.claimedBy, claimers[i]);
        });
        for (const id of all) assert.equal((await store.getCommand(db, id))?.attempts, 1);
      });

      it("starts a command only for its claimer", async () => {
        const db = freshDb();
        const c = await create(db, "a");
        const unclaimed = await create(db, "b");
        await claim(db, "a", "conn1");
        assert.equal(await store.startCommand(db, c.id, "conn2", T + 5), null);
        assert.equal(await state(db, c.id), "delivered");
        const started = await store.startCommand(db, c.id, "conn1", T + 5);
        assert.equal(started?.state, "running");
        assert.equal(started?.startedAt, T + 5);
        assert.equal(started?.claimedBy, "conn1");
        assert.equal(await store.startCommand(db, unclaimed.id, "conn1", T + 5), null, "pending: not claimed");
        assert.equal(await store.startCommand(db, randomUUID(), "conn1", T + 5), null);
        assert.equal(await store.startCommand(freshDb(), c.id, "conn1", T + 5), null, "per database");
        await store.finishCommand(db, c.id, { state: "succeeded", result: "null" }, "conn1", T + 6);
        assert.equal(await store.startCommand(db, c.id, "conn1", T + 7), null, "final commands stay final");
      });

      it("records the first outcome and keeps it", async () => {
        const db = freshDb();
        const c = await create(db, "a");
        await claim(db, "a", "conn1");
        const ok = { state: "succeeded", result: '{"ok":true}' } as const;
        const done = await store.finishCommand(db, c.id, ok, "conn1", T + 10);
        assert.equal(done.changed, true);
        assert.equal(done.command?.state, "succeeded");
        assert.equal(done.command?.result, '{"ok":true}');
        assert.equal(done.command?.error, null);
        assert.equal(done.command?.finishedAt, T + 10);
        assert.equal(done.command?.claimedBy, null);
        assert.equal(done.command?.leaseUntil, null);

        const late = await store.finishCommand(db, c.id, { state: "failed", error: { message: "x" } }, "conn1", T + 20);
        assert.equal(late.changed, false);
        assert.deepEqual(late.command, done.command, "the stored outcome is the first one");
        const cancel = await store.finishCommand(db, c.id, { state: "cancelled" }, null, T + 30);
        assert.equal(cancel.changed, false);
        assert.deepEqual(await store.getCommand(db, c.id), done.command);

        const f = await create(db, "a");
        await claim(db, "a", "conn1");
        const error = { message: "boom", code: "E_BOOM", data: { line: 3, why: ["x"] } };
        const failed = await store.finishCommand(db, f.id, { state: "failed", error }, "conn1", T + 10);
        assert.equal(failed.changed, true);
        assert.deepEqual(failed.command?.error, error);
        assert.equal(failed.command?.result, null);
        assert.deepEqual((await store.getCommand(db, f.id))?.error, error);

        assert.deepEqual(await store.finishCommand(db, randomUUID(), { state: "cancelled" }, null, T), {
          command: null,
          changed: false,
        });
        assert.deepEqual(await store.finishCommand(freshDb(), f.id, { state: "cancelled" }, null, T), {
          command: null,
          changed: false,
        });
      });

      it("lets only the claimer or the server finish a command", async () => {
        const db = freshDb();
        const c = await create(db, "a");
        await claim(db, "a", "conn1");
        const stranger = await store.finishCommand(db, c.id, { state: "succeeded", result: "1" }, "conn2", T + 1);
        assert.equal(stranger.changed, false);
        assert.equal(stranger.command?.state, "delivered");
        assert.equal(stranger.command?.claimedBy, "conn1");

        const server = await store.finishCommand(db, c.id, { state: "cancelled" }, null, T + 2);
        assert.equal(server.changed, true);
        assert.equal(server.command?.state, "cancelled");
        assert.equal(server.command?.finishedAt, T + 2);
        assert.equal(server.command?.result, null);
        assert.equal(server.command?.error, null);

        const pending = await create(db, "b");
        const client = await store.finishCommand(db, pending.id, { state: "succeeded", result: "1" }, "conn1", T);
        assert.equal(client.changed, false, "nobody holds a pending command");
        assert.equal(client.command?.state, "pending");
        const expired = await store.finishCommand(db, pending.id, { state: "expired" }, null, T + 3);
        assert.equal(expired.changed, true);
        assert.equal(expired.command?.state, "expired");
      });

      it("puts the commands of a claimer back to pending when it releases them", async () => {
        const db = freshDb();
        const c1 = await create(db, "a", { now: T });
        const c2 = await create(db, "a", { now: T + 1 });
        const c3 = await create(db, "a", { now: T + 2 });
        await store.claimCommands(db, "a", "conn1", 2, T, LEASE);
        await store.startCommand(db, c2.id, "conn1", T);
        await claim(db, "a", "conn2");
        assert.equal(await store.releaseClaims(db, "conn1"), 2);
        for (const c of [c1, c2]) {
          const r = await store.getCommand(db, c.id);
          assert.equal(r?.state, "pending", "delivered and running go back to pending");
          assert.equal(r?.claimedBy, null);
          assert.equal(r?.leaseUntil, null);
          assert.equal(r?.attempts, 1);
        }
        const kept = await store.getCommand(db, c3.id);
        assert.equal(kept?.state, "delivered");
        assert.equal(kept?.claimedBy, "conn2");
        assert.equal(await store.releaseClaims(db, "conn1"), 0);
        assert.equal(await store.releaseClaims(freshDb(), "conn2"), 0, "per database");

        const again = await store.claimCommands(db, "a", "conn3", 10, T + 1, LEASE);
        assert.deepEqual(again.map((c) => [c.id, c.state, c.attempts]), [
          [c1.id, "delivered", 2],
          [c2.id, "delivered", 2],
        ]);
        await store.finishCommand(db, c1.id, { state: "succeeded", result: "1" }, "conn3", T + 2);
        assert.equal(await store.releaseClaims(db, "conn3"), 1, "final commands are not released");
        assert.equal(await state(db, c1.id), "succeeded");
      });

      it("lets another claimer take a command whose lease ran out", async () => {
        const db = freshDb();
        const running = await create(db, "a", { now: T });
        const delivered = await create(db, "a", { now: T + 1 });
        await claim(db, "a", "conn1", T);
        await store.startCommand(db, running.id, "conn1", T + 1);

        assert.deepEqual(await claim(db, "a", "conn2", T + LEASE - 1), [], "the lease still holds");
        const taken = await store.claimCommands(db, "a", "conn2", 10, T + LEASE, LEASE);
        assert.deepEqual(taken.map((c) => [c.id, c.state, c.attempts, c.claimedBy, c.leaseUntil]), [
          [running.id, "running", 2, "conn2", T + 2 * LEASE],
          [delivered.id, "delivered", 2, "conn2", T + 2 * LEASE],
        ]);
        assert.equal(taken[0]!.startedAt, T + 1, "started stays started");

        const one = { state: "succeeded", result: "1" } as const;
        const old = await store.finishCommand(db, running.id, one, "conn1", T + LEASE + 1);
        assert.equal(old.changed, false, "the previous claimer lost it");
        assert.equal(await store.startCommand(db, delivered.id, "conn1", T + LEASE + 1), null);
        assert.equal((await store.startCommand(db, running.id, "conn2", T + LEASE + 2))?.state, "running");
        const two = { state: "succeeded", result: "2" } as const;
        const done = await store.finishCommand(db, running.id, two, "conn2", T + LEASE + 3);
        assert.equal(done.changed, true);
        assert.equal(done.command?.result, "2");

        const third = await store.claimCommands(db, "a", "conn3", 10, T + 5 * LEASE, LEASE);
        assert.deepEqual(third.map((c) => [c.id, c.attempts]), [[delivered.id, 3]], "attempts keep counting");
      });

      it("extends the leases of a claimer when it renews them", async () => {
        const db = freshDb();
        const c1 = await create(db, "a", { now: T });
        const c2 = await create(db, "a", { now: T + 1 });
        const other = await create(db, "b");
        await claim(db, "a", "conn1", T);
        await claim(db, "b", "conn2", T);
        assert.equal(await store.renewClaims(db, "conn1", T + 800, LEASE), 2);
        assert.equal((await store.getCommand(db, c1.id))?.leaseUntil, T + 800 + LEASE);
        assert.equal((await store.getCommand(db, other.id))?.leaseUntil, T + LEASE, "others' leases untouched");
        assert.deepEqual(await claim(db, "a", "conn3", T + 1500), [], "renewed leases hold");
        assert.deepEqual(await claim(db, "b", "conn3", T + 1500), [other.id]);

        await store.finishCommand(db, c1.id, { state: "cancelled" }, null, T + 1600);
        assert.equal(await store.renewClaims(db, "conn1", T + 1600, LEASE), 1, "final commands are not renewed");
        assert.equal((await store.getCommand(db, c2.id))?.leaseUntil, T + 1600 + LEASE);
        assert.equal(await store.renewClaims(db, "conn2", T + 1600, LEASE), 0, "conn2 lost its command");
        assert.equal(await store.renewClaims(freshDb(), "conn1", T + 1600, LEASE), 0, "per database");
      });

      it("expires the open commands whose deadline passed, and only those", async () => {
        const db = freshDb();
        const pending = await create(db, "a", { deadline: T + 100 });
        const delivered = await create(db, "b", { deadline: T + 100 });
        const running = await create(db, "c", { deadline: T + 50 });
        const finished = await create(db, "d", { deadline: T + 100 });
        const later = await create(db, "a", { deadline: T + 101 });
        const never = await create(db, "a");
        await claim(db, "b", "conn1");
        await claim(db, "c", "conn1");
        await store.startCommand(db, running.id, "conn1", T);
        await claim(db, "d", "conn1");
        await store.finishCommand(db, finished.id, { state: "succeeded", result: "1" }, "conn1", T);

        const expired = await store.expireCommands(db, T + 100);
        assert.deepEqual(expired.map((c) => c.id).sort(), [pending.id, delivered.id, running.id].sort());
        for (const c of expired) {
          assert.equal(c.state, "expired");
          assert.equal(c.finishedAt, T + 100);
          assert.equal(c.claimedBy, null);
          assert.equal(c.leaseUntil, null);
          assert.equal(c.db, db);
        }
        assert.equal(await state(db, finished.id), "succeeded");
        assert.equal(await state(db, later.id), "pending");
        assert.equal(await state(db, never.id), "pending");
        assert.deepEqual(await store.expireCommands(db, T + 100), [], "already expired");
        assert.equal(await store.countOpenCommands(db, "a"), 2);

        const answer = await store.finishCommand(db, running.id, { state: "succeeded", result: "1" }, "conn1", T + 101);
        assert.equal(answer.changed, false, "expiry was the first outcome");
        assert.equal(answer.command?.state, "expired");
        assert.deepEqual(await store.expireCommands(freshDb(), T + 1000), [], "per database");
      });

      it("keeps commands apart per database", async () => {
        const db = freshDb();
        const elsewhere = freshDb();
        const c = await create(db, "a", { deadline: T + 10 });
        assert.equal(await store.getCommand(elsewhere, c.id), null);
        assert.deepEqual(await store.listCommands(elsewhere, { address: "a", limit: 10 }), []);
        assert.equal(await store.countOpenCommands(elsewhere, "a"), 0);
        assert.deepEqual(await claim(elsewhere, "a", "conn1"), []);
        assert.deepEqual(await store.expireCommands(elsewhere, T + 100), []);
        assert.equal(await state(db, c.id), "pending");

        await claim(db, "a", "conn1");
        assert.equal(await store.renewClaims(elsewhere, "conn1", T, LEASE), 0);
        assert.equal(await store.releaseClaims(elsewhere, "conn1"), 0);
        assert.equal(await store.startCommand(elsewhere, c.id, "conn1", T), null);
        assert.equal((await store.finishCommand(elsewhere, c.id, { state: "cancelled" }, null, T)).changed, false);
        assert.equal(await state(db, c.id), "delivered");
        assert.equal((await store.getCommand(db, c.id))?.claimedBy, "conn1");
      });
    });

    if (harness.reopen) {
      const reopen = harness.reopen;
      describe("restart", () => {
        it("keeps every message, the order and the cursors across close and reopen", async () => {
          const db = freshDb();
          const out = await store.append(db, Array.from({ length: 5 }, (_, i) => entry("a", { i })));
          await store.trim(db, { maxAgeMs: 0, maxCount: 3 }, Date.now());
          const now = Date.now();
          await store.claimOwner(db, "client:x", "u1", { now, ttlMs: 3_600_000, maxPerOwner: 10 });
          await store.close();
          store = appendsReadable(await reopen());
          await store.open();
          const all = await store.read(db, { after: out[1]!.id, limit: 10 });
          assert.equal(all.gap, false);
          assert.deepEqual(all.messages.map((m) => m.id), out.slice(2).map((m) => m.id));
          const old = await store.read(db, { after: out[0]!.id, limit: 10 });
          assert.equal(old.gap, true, "retention's watermark survives a restart");
          assert.equal(await store.head(db), out[4]!.id);
          const [next] = await store.append(db, [entry("a", { i: 5 })]);
          assert.ok(next!.id > out[4]!.id, "new ids sort after the old ones");
          assert.equal(await store.claimOwner(db, "client:x", "u2", { now, ttlMs: 3_600_000, maxPerOwner: 10 }), "u1", "claims survive a restart");
        });
      });
    }
  });
}

/**
 * The store with `append` resolving once what it appended is readable. On PostgreSQL a commit
 * becomes readable only when every older transaction of the server has ended (the late-commit
 * guard of DESIGN §3), and a shared server's other sessions hold such transactions: what the
 * contract promises is "readable, in order, soon", which this waits for, with a deadline.
 */
function appendsReadable(store: Store): Store {
  const append = store.append.bind(store);
  store.append = async (db, entries) => {
    const out = await append(db, entries);
    const last = out.at(-1)?.id;
    for (const end = Date.now() + 15_000; last !== undefined; ) {
      const head = await store.head(db);
      if (head !== null && head >= last) break;
      if (Date.now() > end) throw new Error(`appended ${last} was not readable within 15 s (head ${head})`);
      await sleep(20);
    }
    return out;
  };
  return store;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}
