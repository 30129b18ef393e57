/**
 * Three instances on a Redis of the test's own that crashes (SIGKILL) and comes back.
 * With an append-only file fsynced on every write, nothing acknowledged is lost: instances
 * reconnect, their watchers wake every database and subscribers catch up from their
 * cursors. Without persistence (Redis' default under `--save "" --appendonly no`), the log
 * is gone and the store gets a new epoch: every subscriber is told of the gap, then gets
 * everything published after the restart, in one order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PrivateRedis, redisEngine, redisServerMissing, type RedisEngine } from "./engines.js";
import { publish } from "./helpers.js";
import { assertEveryoneGot, nothingLostUnder, startSetup, type Setup } from "./scenarios.js";
import { subscribeEverywhere } from "./subscribers.js";

const skip = process.env.CI === "true" ? false : redisServerMissing;

describe("instances on a Redis that crashes and restarts", { skip }, () => {
  let redis: PrivateRedis;
  let engine: RedisEngine;
  let setup: Setup;
  before(async () => {
    redis = await PrivateRedis.start();
    engine = await redisEngine(redis.url);
    setup = await startSetup(engine);
  });
  after(async () => {
    await setup?.cluster.stop();
    await engine?.close();
    await redis?.stop();
  });

  it("catches up after Redis is killed and restarted with its data, losing nothing acknowledged", async () => {
    await nothingLostUnder(setup, async () => {
      await redis.kill();
      await redis.restart();
    });
  });

  it("tells every subscriber of the gap when Redis comes back empty, then delivers in one order", async () => {
    const { cluster, subscriber, publisher } = setup;
    const urls = cluster.urls;
    const ch = `wiped-${randomBytes(3).toString("hex")}`;
    const start = await publish(urls[0]!, publisher, { channel: ch, message: { type: "start" } });
    const subs = subscribeEverywhere(urls, subscriber, [ch], start);
    try {
      const before: string[] = [];
      for (const url of urls) before.push(await publish(url, publisher, { channel: ch, message: { type: "before" } }));
      await Promise.all(subs.map((s) => s.reaches(before.at(-1)!)));

      await redis.kill();
      await redis.restartEmpty();
      // Each instance takes its own time to reconnect: publish through each until it answers.
      const afterIds: string[] = [];
      for (const url of urls) {
        for (let attempt = 0; ; attempt++) {
          try {
            afterIds.push(await publish(url, publisher, { channel: ch, message: { type: "after" } }));
            break;
          } catch (e) {
            if (attempt > 100) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
      assert.notEqual(afterIds[0]!.split(":")[0], start.split(":")[0], "a new epoch after the wipe");

      const expected = await engine.read([ch], null);
      assert.deepEqual(expected.map((m) => m.id), afterIds);
      await Promise.all(subs.map((s) => s.reaches(afterIds.at(-1)!)));
      for (const s of subs) {
        assert.equal(s.gaps, 1, `${s.label}: told once that messages may have been missed`);
        assert.deepEqual(s.ids, [...before, ...afterIds], `${s.label}: what it had, then the new log`);
      }
    } finally {
      for (const s of subs) s.close();
    }
  });
});
