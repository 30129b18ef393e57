/**
 * Three `tidings serve` processes on one Redis key prefix (DESIGN §3.1, issue 5): one
 * order everywhere, a long-poll client moving between instances, and nothing acknowledged
 * lost when every Redis connection of the instances is killed (CLIENT KILL) or an instance
 * is killed with -9. A Redis restart is in redis-restart.test.ts, on a server of its own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { redisEngine } from "./engines.js";
import { Cluster, token } from "./helpers.js";
import { nothingLostUnder, oneOrderEverywhere, type Setup } from "./scenarios.js";

const engine = await redisEngine();

describe("three instances on Redis", { skip: engine.skip }, () => {
  let setup: Setup;
  before(async () => {
    const cluster = await Cluster.start(engine.storeUrl);
    setup = { cluster, engine, subscriber: await token("u1"), publisher: await token("app", "publisher") };
  });
  after(async () => {
    await setup?.cluster.stop();
    await engine.close();
  });

  it("gives every instance and transport one order; a long-poll moves from A to B with its cursor", async () => {
    await oneOrderEverywhere(setup);
  });

  it("loses nothing when every Redis connection of the instances is killed under load (CLIENT KILL)", async () => {
    let killed = 0;
    await nothingLostUnder(setup, async () => {
      killed = await engine.killConnections();
    });
    // Each instance holds a command connection and a watcher blocked in XREAD.
    assert.ok(killed >= 6, `CLIENT KILL hit ${killed} connections of the instances`);
  });

  it("delivers every acknowledged message when instance A is killed with -9 under load", async () => {
    const { subs } = await nothingLostUnder(setup, () => setup.cluster.kill(0));
    for (const s of subs.filter((s) => s.received[0]?.via === 0)) {
      assert.ok(s.failovers >= 1, `${s.label}: resumed on another instance after A died`);
      assert.notEqual(s.received.at(-1)!.via, 0);
    }
  });
});
