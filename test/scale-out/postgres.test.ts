/**
 * Three `tidings serve` processes on one PostgreSQL schema (DESIGN §3.1, issue 5): one
 * order everywhere, a long-poll client moving between instances, and nothing acknowledged
 * lost when every engine connection is terminated or an instance is killed with -9.
 *
 * Restarting the PostgreSQL server itself would disrupt every other test sharing it; to
 * the instances a restart is their connections dying and coming back, which is what
 * terminating every backend of theirs does (docs/scale-out.md).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { postgresEngine } from "./engines.js";
import { Cluster, token } from "./helpers.js";
import { nothingLostUnder, oneOrderEverywhere, type Setup } from "./scenarios.js";

const engine = await postgresEngine();

describe("three instances on PostgreSQL", { skip: engine.skip }, () => {
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

  it("loses nothing when every engine connection of the instances is terminated under load", async () => {
    let killed = 0;
    await nothingLostUnder(setup, async () => {
      killed = await engine.killConnections();
    });
    // Each instance holds at least its LISTEN connection and one pooled connection.
    assert.ok(killed >= 6, `pg_terminate_backend hit ${killed} sessions of the instances`);
  });

  it("delivers every acknowledged message when instance A is killed with -9 under load", async () => {
    const { subs } = await nothingLostUnder(setup, () => setup.cluster.kill(0));
    for (const s of subs.filter((s) => s.received[0]?.via === 0)) {
      assert.ok(s.failovers >= 1, `${s.label}: resumed on another instance after A died`);
      assert.notEqual(s.received.at(-1)!.via, 0);
    }
  });
});
