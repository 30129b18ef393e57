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
import { request, token as testToken } from "../helpers/server.js";
import { NodeProcess, startClientProcess, startServerProcess } from "../commands/processes.js";

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

describe("a second server starting on the SQLite file of a first", () => {
  const own = sqliteFile();
  const procs: NodeProcess[] = [];
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await own.close();
  });

  it("leaves the commands that the first one's clients are running alone", async () => {
    const options = { store: own.storeUrl, commands: { leaseMs: 60_000 } };
    const a = await startServerProcess(options);
    procs.push(a.proc);
    const publisher = await testToken("app", { role: "publisher" });
    const client = startClientProcess({ url: a.url, token: await testToken("bot", { addresses: ["bot:*"] }), address: "bot:a", transport: "websocket" });
    procs.push(client);
    const deadline = AbortSignal.timeout(15_000);
    const seen = (what: string, match: Parameters<NodeProcess["waitFor"]>[0]) =>
      Promise.race([
        client.waitFor(match, what),
        new Promise<never>((_, reject) => deadline.addEventListener("abort", () => reject(new Error(`timed out waiting for ${what}`)))),
      ]);
    await seen("ready", (e) => e.event === "ready");
    const sent = await request(`${a.url}/test/commands`, { token: publisher, body: { address: "bot:a", method: "hold", args: ["k"] } });
    assert.equal(sent.status, 201);
    const id = sent.body.id as string;
    await seen("the run", (e) => e.event === "run" && e.id === id);

    // B starts and uses commands of the same database: a restart would give stale claims back.
    const b = await startServerProcess(options);
    procs.push(b.proc);
    const other = await request(`${b.url}/test/commands`, { token: publisher, body: { address: "bot:b", method: "noop", args: [] } });
    assert.equal(other.status, 201);
    const held = await request(`${b.url}/test/commands/${id}`, { method: "GET", token: publisher });
    assert.equal(held.body.state, "running", "still running on A's client");
    assert.equal(held.body.attempts, 1);

    client.tell("release k");
    const done = await request(`${b.url}/test/commands/${id}?wait=10`, { method: "GET", token: publisher });
    assert.equal(done.body.state, "succeeded");
    assert.equal(done.body.attempts, 1, "delivered once");
  });
});
