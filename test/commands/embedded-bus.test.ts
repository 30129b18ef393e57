/**
 * An application that embeds `createBus()` only to publish pays nothing for commands: no
 * expiry sweep runs until it uses commands in a database; a server sweeps every
 * configured database from the start (commands of other instances must expire too).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createBus } from "../../src/bus.js";
import { createServer } from "../../src/server.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import type { CommandRecord } from "../../src/stores/store.js";

/** The memory engine, remembering which databases were swept for expired commands. */
class SweepCountingStore extends MemoryStore {
  readonly swept: string[] = [];
  override expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    this.swept.push(db);
    return super.expireCommands(db, now);
  }
}

const SWEEP_MS = 20;

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("the command-expiry sweep", () => {
  it("does not run in a bus that only publishes", async () => {
    const store = new SweepCountingStore();
    const bus = await createBus({ storeInstance: store, databases: ["app", "other"], logLevel: "silent", commands: { expiryIntervalMs: SWEEP_MS } });
    try {
      await bus.publish("app", "invoice-42", { type: "changed" });
      // Ten sweep intervals without a sweep: the timer is not running at all.
      await sleep(SWEEP_MS * 10);
      assert.deepEqual(store.swept, []);
    } finally {
      await bus.close();
    }
  });

  it("starts in the database an embedded bus sends commands in, and only there", async () => {
    const store = new SweepCountingStore();
    const bus = await createBus({ storeInstance: store, databases: ["app", "other"], logLevel: "silent", commands: { expiryIntervalMs: SWEEP_MS } });
    try {
      await bus.commands.send("app", "worker:1", "run", [], { timeoutMs: 60_000 });
      await until(() => store.swept.filter((db) => db === "app").length >= 2, "two sweeps of app");
      assert.ok(!store.swept.includes("other"), `swept ${JSON.stringify([...new Set(store.swept)])}`);
    } finally {
      await bus.close();
    }
  });

  it("covers every configured database in a server", async () => {
    const store = new SweepCountingStore();
    const server = await createServer({ storeInstance: store, databases: ["app", "other"], logLevel: "silent", secret: "s".repeat(32), commands: { expiryIntervalMs: SWEEP_MS } });
    try {
      await until(() => store.swept.includes("app") && store.swept.includes("other"), "sweeps of both databases");
    } finally {
      await server.close();
    }
  });
});
