/**
 * The claim cycle every command wire shares: claims again at once while claims fill their
 * room, waits for a wake-up otherwise, and never loses one that arrives mid-claim.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { claimLoop, WakeSignal } from "../../src/protocol/claim-loop.js";

describe("claimLoop", () => {
  it("drains a backlog in room-sized claims, then waits for a wake-up; one sent during a claim is not lost", async () => {
    const pending = [1, 2, 3, 4, 5];
    const delivered: number[][] = [];
    const signal = new WakeSignal();
    let closed = false;
    let wakes = 0;
    const done = claimLoop<number>({
      live: () => !closed,
      room: () => 2,
      claim: async (limit) => {
        const got = pending.splice(0, limit);
        // A publisher's wake-up lands while this claim is in flight.
        if (got.includes(5)) {
          pending.push(6);
          signal.notify();
        }
        return got;
      },
      deliver: (got) => void delivered.push([...got]),
      wake: async () => {
        wakes += 1;
        if (pending.length === 0) {
          closed = true;
          signal.close();
        }
        return signal.wait();
      },
    });
    await done;
    assert.deepEqual(delivered, [[1, 2], [3, 4], [5], [6]]);
    assert.equal(wakes, 2, "waited after the partial claim of 5, then once more after 6");
  });

  it("ends when its wake-up signal closes, and a failing claim rejects it for the caller to retry", async () => {
    const signal = new WakeSignal();
    const idle = claimLoop<number>({ live: () => true, room: () => 1, claim: async () => [], deliver: () => {}, wake: () => signal.wait() });
    signal.close();
    await idle;
    await assert.rejects(
      claimLoop<number>({ live: () => true, room: () => 1, claim: async () => Promise.reject(new Error("store down")), deliver: () => {}, wake: async () => true }),
      /store down/,
    );
  });
});
