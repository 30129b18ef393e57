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
import type { AppendEntry, Store, StoredMessage } from "../../src/stores/store.js";

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
      store = await harness.create();
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
      it("records the first owner and keeps it", async () => {
        const db = freshDb();
        assert.equal(await store.claimOwner(db, "client:abc", "7"), "7");
        assert.equal(await store.claimOwner(db, "client:abc", "8"), "7");
        assert.equal(await store.claimOwner(freshDb(), "client:abc", "8"), "8", "per database");
        const racers = await Promise.all(["1", "2", "3", "4"].map((u) => store.claimOwner(db, "client:race", u)));
        assert.equal(new Set(racers).size, 1, "concurrent claims agree on one owner");
      });
    });

    if (harness.reopen) {
      const reopen = harness.reopen;
      describe("restart", () => {
        it("keeps every message, the order and the cursors across close and reopen", async () => {
          const db = freshDb();
          const out = await store.append(db, Array.from({ length: 5 }, (_, i) => entry("a", { i })));
          await store.trim(db, { maxAgeMs: 0, maxCount: 3 }, Date.now());
          await store.claimOwner(db, "client:x", "u1");
          await store.close();
          store = await reopen();
          await store.open();
          const all = await store.read(db, { after: out[1]!.id, limit: 10 });
          assert.equal(all.gap, false);
          assert.deepEqual(all.messages.map((m) => m.id), out.slice(2).map((m) => m.id));
          const old = await store.read(db, { after: out[0]!.id, limit: 10 });
          assert.equal(old.gap, true, "retention's watermark survives a restart");
          assert.equal(await store.head(db), out[4]!.id);
          const [next] = await store.append(db, [entry("a", { i: 5 })]);
          assert.ok(next!.id > out[4]!.id, "new ids sort after the old ones");
          assert.equal(await store.claimOwner(db, "client:x", "u2"), "u1");
        });
      });
    }
  });
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
