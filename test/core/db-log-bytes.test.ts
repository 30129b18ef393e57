/**
 * The hot tail is bounded by bytes as well as by count (issue 9, item 10): large messages
 * evict the oldest, and reads before what is left go to the store, as with the count bound.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TidingsBus as Bus } from "../../src/bus.js";
import { CountingStore } from "./counting-store.js";
import { DB, ids } from "./harness.js";

const KIB = 1024;

describe("db log: tail bounded by bytes", () => {
  it("keeps at most tailMaxBytes of messages; older cursors read the store, nothing is missed", async () => {
    const store = new CountingStore({ shared: false });
    const bus = await Bus.create({ storeInstance: store, logLevel: "silent", databases: [DB], tailMaxBytes: 256 * KIB });
    try {
      const data = "x".repeat(20_000);
      const sent: string[] = [];
      for (let n = 0; n < 40; n++) sent.push(await bus.publish(DB, "a", { type: "t", n, data }));
      const log = bus.log(DB);
      assert.ok(log.tailByteSize <= 256 * KIB, `${log.tailByteSize} bytes in the tail`);
      assert.ok(log.tailLength >= 8 && log.tailLength <= 13, `${log.tailLength} messages in the tail`);
      store.takeReads();

      // A cursor inside the tail: answered from memory.
      const recent = await bus.poll(DB, { channels: ["a"], after: sent[38]!, limit: 10, timeoutMs: 0 });
      assert.deepEqual(ids(recent.messages), [sent[39]]);
      assert.equal(store.takeReads().length, 0);

      // A cursor the byte bound evicted: one store read, every later message, no gap.
      const old = await bus.poll(DB, { channels: ["a"], after: sent[0]!, limit: 100, timeoutMs: 0 });
      assert.deepEqual(ids(old.messages), sent.slice(1));
      assert.equal(old.gap, false);
      assert.equal(store.takeReads().length, 1);
    } finally {
      await bus.close();
    }
  });

  it("rejects a non-positive tailMaxBytes at start", async () => {
    await assert.rejects(Bus.create({ storeInstance: new CountingStore({ shared: false }), logLevel: "silent", tailMaxBytes: 0 }), /tailMaxBytes must be a positive number/);
  });
});
