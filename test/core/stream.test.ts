import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Stream } from "../../src/core/stream.js";
import type { TidingsBus as Bus } from "../../src/bus.js";
import { DB, makeBus, publishN, waitFor } from "./harness.js";

interface Received {
  readonly ids: string[];
  readonly gaps: number[];
  /** Resolves once `n` messages have arrived in total. */
  until(n: number): Promise<void>;
}

function collect(bus: Bus, channels: string[], after: string | null): { stream: Stream; got: Received } {
  const got = { ids: [] as string[], gaps: [] as number[] };
  let want = Infinity;
  let reached: (() => void) | null = null;
  const stream = bus.stream(DB, channels, after, {
    onMessages(messages, gap) {
      if (gap) got.gaps.push(got.ids.length);
      for (const m of messages) got.ids.push(m.id);
      if (got.ids.length >= want) reached?.();
    },
    onError(error) {
      throw error;
    },
  });
  return {
    stream,
    got: {
      ...got,
      until(n) {
        want = n;
        if (got.ids.length >= n) return Promise.resolve();
        return new Promise<void>((resolve) => (reached = resolve));
      },
    },
  };
}

describe("streams: catch-up, then live", () => {
  for (const shared of [false, true]) {
    const how = shared ? "shared store" : "single-process store";
    it(`has neither a gap nor a duplicate at the seam while publishers keep going (${how})`, async () => {
      // A small tail: the catch-up must page through the store, not the tail.
      const { bus } = await makeBus({ shared, tailSize: 50 });
      try {
        const start = await bus.publish(DB, "a", { type: "t" });
        const backlog = await publishN(bus, "a", 1200);
        await publishN(bus, "noise", 20);
        // Publishers run while the stream catches up; one of them in batches.
        const live: Promise<string[]>[] = [
          publishN(bus, "a", 150, 10_000),
          (async () => {
            const out: string[] = [];
            for (let i = 0; i < 15; i++) {
              const batch = await bus.publishMany(DB, [
                { channel: "a", message: { type: "t", batch: i, k: 0 } },
                { channel: "noise", message: { type: "t" } },
                { channel: "a", message: { type: "t", batch: i, k: 1 } },
              ]);
              out.push(batch[0]!, batch[2]!);
              await new Promise((r) => setImmediate(r));
            }
            return out;
          })(),
        ];
        const { stream, got } = collect(bus, ["a"], start);
        const published = (await Promise.all(live)).flat();
        const expected = [...backlog, ...published].sort();
        await got.until(expected.length);
        // One more after everything settled: it is live, and arrives once.
        const last = await bus.publish(DB, "a", { type: "t" });
        await got.until(expected.length + 1);
        stream.close();
        assert.deepEqual(got.ids, [...expected, last]);
        assert.equal(new Set(got.ids).size, got.ids.length);
        assert.deepEqual(got.gaps, []);
      } finally {
        await bus.close();
      }
    });
  }

  it("tells a stream whose cursor is older than retention about the gap, then continues", async () => {
    const { bus } = await makeBus({ tailSize: 2, retention: { maxCount: 2 } });
    try {
      const sent = await publishN(bus, "a", 5);
      await bus.runRetention();
      const { stream, got } = collect(bus, ["a"], sent[0]!);
      await got.until(2);
      const next = await bus.publish(DB, "a", { type: "t" });
      await got.until(3);
      stream.close();
      assert.deepEqual(got.ids, [sent[3], sent[4], next]);
      assert.deepEqual(got.gaps, [0], "the first batch carries the gap");
    } finally {
      await bus.close();
    }
  });

  it("says gap with an empty batch when nothing is left after a foreign cursor", async () => {
    const { bus } = await makeBus();
    try {
      const { stream, got } = collect(bus, ["a"], "000000001:0000000000000009");
      const first = await bus.publish(DB, "b", { type: "t" }); // loads the log; not on "a"
      const onA = await bus.publish(DB, "a", { type: "t" });
      await got.until(1);
      stream.close();
      assert.ok(first < onA);
      assert.deepEqual(got.ids, [onA]);
      assert.deepEqual(got.gaps, [0]);
    } finally {
      await bus.close();
    }
  });

  it("delivers nothing after close and leaves the channel index", async () => {
    const { bus } = await makeBus();
    try {
      const start = await bus.publish(DB, "a", { type: "t" });
      const { stream, got } = collect(bus, ["a", "b"], start);
      await waitFor(() => bus.log(DB).listenerCount === 1, "the stream to go live");
      const one = await bus.publish(DB, "b", { type: "t" });
      await got.until(1);
      stream.close();
      stream.close();
      assert.equal(bus.log(DB).listenerCount, 0);
      await bus.publish(DB, "a", { type: "t" });
      await bus.log(DB).refresh();
      assert.deepEqual(got.ids, [one]);
      assert.equal(stream.cursor, one);
    } finally {
      await bus.close();
    }
  });
});
