/**
 * The shared engine fails under two instances while they publish and while their
 * subscribers resume (issue 9, faults): every PostgreSQL backend of the instances is
 * terminated (`pg_terminate_backend`), every Redis connection is killed (`CLIENT KILL`) and
 * Redis itself crashes and restarts. Subscribers of every transport drop their connection
 * every few messages and resume from their cursor on the other instance, so that strikes
 * land mid-publish, mid-subscribe and mid-catch-up. The checker compares each subscriber's
 * deliveries with the store's log: every acknowledged publish there, one order, no message
 * twice.
 *
 * Redis here is a server of the test's own on another port (test/scale-out/engines.ts), so
 * that neither the kills nor the restart touch anyone else's Redis.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PrivateRedis, postgresEngine, redisEngine, redisServerMissing, type RedisEngine } from "../scale-out/engines.js";
import { nothingLostUnder, startSetup, type Setup } from "../scale-out/scenarios.js";

/** Each subscriber resumes this often, so that every strike finds some of them reconnecting. */
const RESUME_EVERY = 25;

const pg = await postgresEngine();

describe("PostgreSQL backends terminated under two instances", { skip: pg.skip }, () => {
  let setup: Setup;
  before(async () => {
    setup = await startSetup(pg, 2);
  });
  after(async () => {
    await setup?.cluster.stop();
    await pg.close();
  });

  it("loses nothing and repeats nothing when every backend is terminated twice while subscribers resume", async () => {
    const killed: number[] = [];
    await nothingLostUnder(setup, async () => void killed.push(await pg.killConnections()), { strikes: 2, resumeEvery: RESUME_EVERY });
    // Each instance holds at least its LISTEN connection and one pooled connection.
    for (const n of killed) assert.ok(n >= 4, `pg_terminate_backend hit ${n} sessions of the instances`);
  });
});

const skipRedis = process.env.CI === "true" ? false : redisServerMissing;

describe("Redis connections killed and Redis restarted under two instances", { skip: skipRedis }, () => {
  let redis: PrivateRedis;
  let engine: RedisEngine;
  let setup: Setup;
  before(async () => {
    redis = await PrivateRedis.start();
    engine = await redisEngine(redis.url);
    setup = await startSetup(engine, 2);
  });
  after(async () => {
    await setup?.cluster.stop();
    await engine?.close();
    await redis?.stop();
  });

  it("loses nothing and repeats nothing through CLIENT KILL, then a crash and restart, while subscribers resume", async () => {
    const killed: number[] = [];
    let strike = 0;
    await nothingLostUnder(
      setup,
      async () => {
        if (strike++ === 0) {
          killed.push(await engine.killConnections());
        } else {
          await redis.kill();
          await redis.restart();
        }
      },
      { strikes: 2, resumeEvery: RESUME_EVERY },
    );
    // Each instance holds a command connection and a watcher blocked in XREAD.
    for (const n of killed) assert.ok(n >= 4, `CLIENT KILL hit ${n} connections of the instances`);
  });
});
