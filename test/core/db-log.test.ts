import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { DB, ids, makeBus, publishN } from "./harness.js";
import { CountingStore } from "./counting-store.js";

/** A poll that answers at once (timeout 0): what is there after `after`, up to `limit`. */
function readNow(bus: Awaited<ReturnType<typeof makeBus>>["bus"], channels: string[], after: string | null, limit = 100) {
  return bus.poll(DB, { channels, after, limit, timeoutMs: 0 });
}

describe("db log: reading after a cursor", () => {
  it("answers from the hot tail without reading the store", async () => {
    const { bus, store } = await makeBus();
    try {
      const sent = await publishN(bus, "a", 5);
      store.takeReads();
      const got = await readNow(bus, ["a"], sent[0]!);
      assert.deepEqual(ids(got.messages), sent.slice(1));
      assert.equal(got.gap, false);
      assert.equal(store.takeReads().length, 0, "the tail held everything");
    } finally {
      await bus.close();
    }
  });

  it("returns only the reader's channels, in log order, up to the limit", async () => {
    const { bus } = await makeBus();
    try {
      const a1 = await bus.publish(DB, "a", { type: "t" });
      const b1 = await bus.publish(DB, "b", { type: "t" });
      const c1 = await bus.publish(DB, "c", { type: "t" });
      const a2 = await bus.publish(DB, "a", { type: "t" });
      const b2 = await bus.publish(DB, "b", { type: "t" });
      assert.deepEqual(ids((await readNow(bus, ["b", "a"], a1)).messages), [b1, a2, b2]);
      assert.deepEqual(ids((await readNow(bus, ["b", "a"], a1, 2)).messages), [b1, a2]);
      assert.deepEqual(ids((await readNow(bus, ["c"], b1)).messages), [c1]);
      assert.deepEqual(ids((await readNow(bus, ["c"], c1)).messages), []);
    } finally {
      await bus.close();
    }
  });

  it("resumes from a cursor the tail has evicted by reading the store once, without a gap", async () => {
    const { bus, store } = await makeBus({ tailSize: 3 });
    try {
      const sent = await publishN(bus, "a", 10);
      store.takeReads();
      const got = await readNow(bus, ["a"], sent[1]!, 1);
      assert.deepEqual(ids(got.messages), [sent[2]]);
      assert.equal(got.gap, false);
      const reads = store.takeReads();
      assert.equal(reads.length, 1);
      assert.equal(reads[0]!.after, sent[1]);
      // Inside the tail again: no read.
      assert.deepEqual(ids((await readNow(bus, ["a"], sent[7]!)).messages), sent.slice(8));
      assert.equal(store.takeReads().length, 0);
    } finally {
      await bus.close();
    }
  });

  it("serves every cursor after a restart from the store (empty tail), the same as before", async () => {
    const store = new CountingStore();
    const first = await makeBus({ store });
    const sent = await publishN(first.bus, "a", 6);
    const before = await readNow(first.bus, ["a"], sent[2]!);
    await first.bus.close();
    const second = await makeBus({ store });
    try {
      const after = await readNow(second.bus, ["a"], sent[2]!);
      assert.deepEqual(ids(after.messages), ids(before.messages));
      assert.equal(after.gap, false);
    } finally {
      await second.bus.close();
    }
  });
});

describe("db log: gaps", () => {
  it("signals a gap for a cursor older than retention and continues from the oldest retained message", async () => {
    const { bus } = await makeBus({ tailSize: 2, retention: { maxCount: 3 } });
    try {
      const sent = await publishN(bus, "a", 6);
      let trimmed = 0;
      bus.once("retention:trimmed", (_db, n) => (trimmed = n));
      await bus.runRetention();
      assert.equal(trimmed, 3);

      const lost = await readNow(bus, ["a"], sent[0]!, 10);
      assert.equal(lost.gap, true);
      assert.deepEqual(ids(lost.messages), sent.slice(3));

      // The last removed message is still a known position: nothing after it was removed.
      const edge = await readNow(bus, ["a"], sent[2]!, 10);
      assert.equal(edge.gap, false);
      assert.deepEqual(ids(edge.messages), sent.slice(3));
    } finally {
      await bus.close();
    }
  });

  it("signals a gap for a cursor of another epoch (a wiped store), with or without messages", async () => {
    const foreign = "000000001:0000000000000001";
    const { bus } = await makeBus();
    try {
      const empty = await readNow(bus, ["a"], foreign);
      assert.deepEqual(empty, { messages: [], gap: true });
      const sent = await publishN(bus, "a", 2);
      const got = await readNow(bus, ["a"], foreign);
      assert.equal(got.gap, true);
      assert.deepEqual(ids(got.messages), sent);
    } finally {
      await bus.close();
    }
  });

  it("never reuses an id across a wiped store: old cursors read as gaps there", async () => {
    const first = await makeBus();
    const old = await publishN(first.bus, "a", 3);
    await first.bus.close();
    // Epochs have millisecond resolution: let the clock move before the store is recreated.
    const t = Date.now();
    while (Date.now() === t);
    const second = await makeBus();
    try {
      const fresh = await publishN(second.bus, "a", 3);
      for (const id of fresh) assert.ok(!old.includes(id));
      const got = await readNow(second.bus, ["a"], old[0]!);
      assert.equal(got.gap, true);
      assert.deepEqual(ids(got.messages), fresh);
    } finally {
      await second.bus.close();
    }
  });
});

describe("db log: readers without a cursor", () => {
  // Date is mocked so "six seconds ago" needs no waiting; timers stay real.
  async function scenario(
    tailSize: number,
  ): Promise<{ window: string[]; expected: string[]; restarted: string[]; windowReads: number }> {
    mock.timers.enable({ apis: ["Date"], now: Date.now() });
    const store = new CountingStore();
    try {
      const first = await makeBus({ tailSize, store });
      await publishN(first.bus, "a", 2); // older than the window
      await first.bus.publish(DB, "b", { type: "t" });
      mock.timers.tick(6_000);
      const expected = await publishN(first.bus, "a", 3, 10);
      await first.bus.publish(DB, "b", { type: "t" });
      mock.timers.tick(4_000); // the first of these is now 4 s old: still inside
      store.takeReads();
      const window = ids((await readNow(first.bus, ["a"], null)).messages);
      const windowReads = store.takeReads().length;
      await first.bus.close();
      const second = await makeBus({ tailSize, store });
      const restarted = ids((await readNow(second.bus, ["a"], null)).messages);
      await second.bus.close();
      return { window, expected, restarted, windowReads };
    } finally {
      mock.timers.reset();
    }
  }

  it("gets the messages of the last five seconds on its channels, from the tail", async () => {
    const { window, expected, restarted, windowReads } = await scenario(1000);
    assert.deepEqual(window, expected);
    assert.equal(windowReads, 0);
    assert.deepEqual(restarted, expected, "the same after a restart");
  });

  it("gets the same messages when the tail is too small to hold the window", async () => {
    const { window, expected, restarted, windowReads } = await scenario(2);
    assert.deepEqual(window, expected);
    assert.equal(windowReads, 1, "one read of the store by time");
    assert.deepEqual(restarted, expected);
  });

  it("gets the first of them only when it asks for one (Tryton)", async () => {
    mock.timers.enable({ apis: ["Date"], now: Date.now() });
    const { bus } = await makeBus();
    try {
      await publishN(bus, "a", 1);
      mock.timers.tick(5_001);
      const recent = await publishN(bus, "a", 2);
      assert.deepEqual(ids((await readNow(bus, ["a"], null, 1)).messages), [recent[0]]);
    } finally {
      mock.timers.reset();
      await bus.close();
    }
  });
});
