import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TidingsBus as Bus } from "../../src/bus.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import type { AppendEntry, StoredMessage } from "../../src/stores/store.js";

/** The memory engine with appends that take a moment, as a networked engine's do. */
class SlowAppendStore extends MemoryStore {
  appendSizes: number[] = [];
  failNext = false;

  override async append(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    this.appendSizes.push(entries.length);
    await new Promise((r) => setTimeout(r, 5));
    if (this.failNext) {
      this.failNext = false;
      throw new Error("engine unavailable");
    }
    return super.append(db, entries);
  }
}

async function bus(store: SlowAppendStore): Promise<Bus> {
  return Bus.create({ storeInstance: store, logLevel: "silent", databases: ["test"] });
}

describe("group commit of concurrent publishes", () => {
  it("combines publishes made while an append is in flight, each caller getting its own ids in order", async () => {
    const store = new SlowAppendStore();
    const b = await bus(store);
    try {
      const calls = Array.from({ length: 50 }, (_, i) =>
        i % 5 === 0
          ? b.publishMany("test", [
              { channel: "c", message: { type: "t", i, part: 0 } },
              { channel: "c", message: { type: "t", i, part: 1 } },
            ])
          : b.publish("test", "c", { type: "t", i }).then((id) => [id]),
      );
      const results = await Promise.all(calls);
      assert.ok(store.appendSizes.length < 10, `50 publishes went to the store in ${store.appendSizes.length} appends`);
      assert.equal(store.appendSizes[0], 2, "the first publish (two messages) of a quiet database goes alone, at once");

      const log = await store.read("test", { after: null, limit: 1000 });
      assert.equal(log.messages.length, 60);
      // The log holds the callers' messages in the order they asked, each caller's ids are its own.
      const byId = new Map(log.messages.map((m) => [m.id, JSON.parse(m.json) as { i: number; part?: number }]));
      results.forEach((ids, i) => {
        assert.deepEqual(ids.map((id) => byId.get(id)!.i), ids.map(() => i));
        if (ids.length === 2) assert.deepEqual(ids.map((id) => byId.get(id)!.part), [0, 1]);
      });
      const flat = results.flat();
      assert.deepEqual(flat, log.messages.map((m) => m.id), "ids in call order are log order");
    } finally {
      await b.close();
    }
  });

  it("a failed append rejects every caller it carried and the next publishes still work", async () => {
    const store = new SlowAppendStore();
    const b = await bus(store);
    try {
      await b.publish("test", "c", { type: "warm-up" });
      store.failNext = true;
      const first = b.publish("test", "c", { type: "lost-1" });
      const [second, third] = [b.publish("test", "c", { type: "lost-2" }), b.publish("test", "c", { type: "kept" })];
      await assert.rejects(first, /engine unavailable/);
      // second and third waited behind the failed append and went together afterwards.
      const ids = await Promise.all([second, third]);
      const log = await store.read("test", { after: null, limit: 10 });
      assert.deepEqual(log.messages.map((m) => (JSON.parse(m.json) as { type: string }).type), ["warm-up", "lost-2", "kept"]);
      assert.deepEqual(log.messages.slice(1).map((m) => m.id), ids);
    } finally {
      await b.close();
    }
  });

  it("an invalid message fails only its own caller", async () => {
    const store = new SlowAppendStore();
    const b = await bus(store);
    try {
      const good = b.publish("test", "c", { type: "ok" });
      const bad = b.publish("test", "c", { no: "type" });
      await assert.rejects(bad, { code: "TIDINGS_ERR_MESSAGE_INVALID" });
      assert.match(await good, /:/);
    } finally {
      await b.close();
    }
  });
});
