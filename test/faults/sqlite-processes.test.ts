/**
 * Several processes on one SQLite file (issue 9, item 1): two `tidings serve` on the same
 * ./data, and an application's `createBus` beside them. Every process's appends reach every
 * subscriber of every process, on every transport, in one order; a cursor taken before
 * them returns them; and `kill -9` of a server under publishing loses nothing acknowledged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Cluster, publish, token } from "../scale-out/helpers.js";
import { assertEveryoneGot, nothingLostUnder, oneOrderEverywhere, type Setup } from "../scale-out/scenarios.js";
import { subscribeEverywhere } from "../scale-out/subscribers.js";
import { sqliteFile } from "./sqlite-file.js";
import { jsonLines, runFixture, runTidings } from "./processes.js";

const file = sqliteFile();

describe("two `tidings serve` and an application on one SQLite file", () => {
  let setup: Setup;
  before(async () => {
    const cluster = await Cluster.start(file.storeUrl, 2);
    setup = { cluster, engine: file, subscriber: await token("u1"), publisher: await token("app", "publisher") };
  });
  after(async () => {
    await setup?.cluster.stop();
    await file.close();
  });

  it("gives both servers' subscribers, on every transport, one order of both servers' publishes", async () => {
    await oneOrderEverywhere(setup);
  });

  it("delivers an application's createBus publishes to live subscribers of both servers, and tail resumes before them", async () => {
    const { cluster, subscriber, publisher } = setup;
    const [a, b] = cluster.urls as [string, string];
    const ch = `app-${randomBytes(3).toString("hex")}`;
    const start = await publish(a, publisher, { channel: ch, message: { type: "start" } });
    const subs = subscribeEverywhere([a, b], subscriber, [ch], start);
    try {
      // The application publishes while server A publishes too: their appends interleave.
      const app = runFixture("app-publisher.ts", { TIDINGS_TEST_STORE: file.storeUrl, TIDINGS_TEST_CHANNEL: ch, TIDINGS_TEST_COUNT: "40" });
      const fromA: string[] = [];
      for (let i = 0; i < 20; i++) fromA.push(await publish(a, publisher, { channel: ch, message: { type: "server", i } }));
      const done = await app;
      assert.equal(done.code, 0, done.stderr);
      const appIds = jsonLines(done.stdout).find((e) => e.event === "published")!.ids as string[];
      assert.equal(appIds.length, 40);

      const expected = await file.read([ch], start);
      assert.deepEqual(new Set(expected.map((m) => m.id)), new Set([...appIds, ...fromA]), "the log holds what both acknowledged");
      await assertEveryoneGot(subs, expected);

      // A cursor from before the application's messages returns them, through either server.
      for (const url of [a, b]) {
        const tail = await runTidings(
          ["tail", "--url", url, "--db", "test", "--token", subscriber, "--channels", ch, "--last-message", start, "-n", String(expected.length)],
        );
        assert.equal(tail.code, 0, tail.stderr);
        const got = jsonLines(tail.stdout).map((l) => (l.message as { message_id: string }).message_id);
        assert.deepEqual(got, expected.map((m) => m.id), `tail through ${url}`);
      }
    } finally {
      for (const s of subs) s.close();
    }
  });

  it("delivers every acknowledged message when server A is killed with -9 under load", async () => {
    const { subs } = await nothingLostUnder(setup, () => setup.cluster.kill(0));
    for (const s of subs.filter((s) => s.received[0]?.via === 0)) {
      assert.ok(s.failovers >= 1, `${s.label}: resumed on the other server after A died`);
      assert.notEqual(s.received.at(-1)!.via, 0);
    }
  });
});
