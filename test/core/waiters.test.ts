import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Delivery } from "../../src/core/listener.js";
import type { TidingsBus as Bus } from "../../src/bus.js";
import { DB, ids, makeBus, waitFor, type BusUnderTest } from "./harness.js";
import { CountingStore } from "./counting-store.js";

/** Parks `n` polls on `channels` after `after`; resolves once all are parked. */
async function park(bus: Bus, n: number, channels: string[], after: string | null): Promise<Array<Promise<Delivery>>> {
  const log = bus.log(DB);
  const before = log.listenerCount;
  const polls: Array<Promise<Delivery>> = [];
  for (let i = 0; i < n; i++) polls.push(bus.poll(DB, { channels, after, limit: 1, timeoutMs: 60_000 }));
  await waitFor(() => log.listenerCount === before + n, `${n} parked polls`);
  return polls;
}

function settledFlags(polls: Array<Promise<unknown>>): { readonly settled: boolean[] } {
  const settled = polls.map(() => false);
  polls.forEach((p, i) => void p.then(() => (settled[i] = true)));
  return { settled };
}

describe("waiters: the cost of a publish", () => {
  /** Parks 1, then 1000 polls on `reader`, publishes once on `writer` each time; the reader's store reads. */
  async function readsPerPublish(
    writer: BusUnderTest,
    reader: BusUnderTest,
  ): Promise<number[]> {
    let cursor = await writer.bus.publish(DB, "room", { type: "t" });
    await reader.bus.log(DB).refresh();
    const out: number[] = [];
    for (const waiters of [1, 1000]) {
      const polls = await park(reader.bus, waiters, ["room", `other-${waiters}`], cursor);
      writer.store.takeReads();
      reader.store.takeReads();
      cursor = await writer.bus.publish(DB, "room", { type: "t", waiters });
      for (const d of await Promise.all(polls)) assert.deepEqual(ids(d.messages), [cursor]);
      out.push(reader.store.takeReads().length);
      assert.equal(reader.bus.log(DB).listenerCount, 0);
    }
    return out;
  }

  it("costs no store read on a single-process store, for 1 or 1000 parked polls", async () => {
    const one = await makeBus();
    try {
      assert.deepEqual(await readsPerPublish(one, one), [0, 0], "the append goes straight into the tail");
    } finally {
      await one.bus.close();
    }
  });

  it("costs an instance woken by a shared store's hint one read, for 1 or 1000 parked polls", async () => {
    const writer = await makeBus({ shared: true });
    const reader = await makeBus({ shared: true, store: new CountingStore({ shared: true, inner: writer.store.inner }) });
    try {
      assert.deepEqual(await readsPerPublish(writer, reader), [1, 1]);
    } finally {
      await reader.bus.close();
      await writer.bus.close();
    }
  });
});

describe("waiters: who is woken", () => {
  it("a publish wakes only the polls of its channels", async () => {
    const { bus } = await makeBus();
    try {
      const cursor = await bus.publish(DB, "x", { type: "t" });
      const onA = await park(bus, 3, ["a"], cursor);
      const onB = await park(bus, 2, ["b", "c"], cursor);
      const b = settledFlags(onB);

      const a1 = await bus.publish(DB, "a", { type: "t" });
      assert.deepEqual(ids((await Promise.all(onA)).flatMap((d) => d.messages)), [a1, a1, a1]);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(b.settled, [false, false], "polls on other channels keep waiting");
      assert.equal(bus.log(DB).listenerCount, 2);

      const c1 = await bus.publish(DB, "c", { type: "t" });
      for (const d of await Promise.all(onB)) assert.deepEqual(ids(d.messages), [c1], "and then get their own message, not a1");
      assert.equal(bus.log(DB).listenerCount, 0);
    } finally {
      await bus.close();
    }
  });

  it("a batch publish wakes a poll once, with the first of its messages", async () => {
    const { bus } = await makeBus();
    try {
      const cursor = await bus.publish(DB, "x", { type: "t" });
      const [poll] = await park(bus, 1, ["a", "b"], cursor);
      const batch = await bus.publishMany(DB, [
        { channel: "z", message: { type: "t" } },
        { channel: "b", message: { type: "t" } },
        { channel: "a", message: { type: "t" } },
      ]);
      assert.deepEqual(ids((await poll!).messages), [batch[1]]);
      // The next poll resumes after it and gets the rest.
      const next = await bus.poll(DB, { channels: ["a", "b"], after: batch[1]!, limit: 10, timeoutMs: 0 });
      assert.deepEqual(ids(next.messages), [batch[2]]);
    } finally {
      await bus.close();
    }
  });

  it("a parked poll that times out or is aborted answers empty and leaves the index", async () => {
    const { bus } = await makeBus();
    try {
      const cursor = await bus.publish(DB, "x", { type: "t" });
      const timedOut = await bus.poll(DB, { channels: ["a"], after: cursor, limit: 1, timeoutMs: 20 });
      assert.deepEqual(timedOut, { messages: [], gap: false });
      const abort = new AbortController();
      const parked: boolean[] = [];
      const aborted = bus.poll(DB, { channels: ["a"], after: cursor, limit: 1, timeoutMs: 60_000, signal: abort.signal, onPark: (p) => parked.push(p) });
      await waitFor(() => bus.log(DB).listenerCount === 1, "a parked poll");
      abort.abort();
      assert.deepEqual(await aborted, { messages: [], gap: false });
      assert.deepEqual(parked, [true, false]);
      assert.equal(bus.log(DB).listenerCount, 0);
    } finally {
      await bus.close();
    }
  });
});
