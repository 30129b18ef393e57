/**
 * The expiry sweep runs from a timer, where nobody awaits it: a store that fails under it
 * (PostgreSQL backends terminated, issue 9) must be reported and tried again on the next
 * sweep — an unhandled rejection there ended the whole server process.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ExpiryScheduler } from "../../src/commands/expiry.js";

describe("the command expiry sweep", () => {
  it("reports a failed run and sweeps again, without an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    const lost = Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
    const errors: Array<[unknown, string]> = [];
    let runs = 0;
    let swept!: () => void;
    const sweptAgain = new Promise<void>((resolve) => (swept = resolve));
    const expiry = new ExpiryScheduler({
      intervalMs: 10,
      horizonMs: 60_000,
      expire: async () => {
        if (++runs === 1) throw lost;
        swept();
      },
      onError: (e, db) => void errors.push([e, db]),
    });
    try {
      expiry.track("test");
      const deadline = setTimeout(() => swept(), 10_000);
      await sweptAgain;
      clearTimeout(deadline);
      // One more turn, so that a rejection nobody handled would have been reported.
      await new Promise((r) => setImmediate(r));
      assert.ok(runs >= 2, `swept again after the failure (${runs} runs)`);
      assert.deepEqual(errors, [[lost, "test"]]);
      assert.deepEqual(unhandled, []);
    } finally {
      expiry.close();
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
