/**
 * Several processes on one SQLite file (issue 9, item 1): two `tidings serve` on the same
 * ./data, and an application's `createBus` beside them. Every process's appends reach every
 * subscriber of every process, on every transport, in one order; a cursor taken before
 * them returns them; and `kill -9` of a server under publishing loses nothing acknowledged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { LoadPublisher, publish } from "../scale-out/helpers.js";
import { assertEveryoneGot, nothingLostUnder, oneOrderEverywhere, startSetup, type Setup } from "../scale-out/scenarios.js";
import { subscribeEverywhere } from "../scale-out/subscribers.js";
import { sqliteFile } from "./sqlite-file.js";
import { jsonLines, runTidings, startFixture } from "./processes.js";
import { request, token as testToken } from "../helpers/server.js";
import { NodeProcess, startClientProcess, startServerProcess } from "../commands/processes.js";

const file = sqliteFile();

describe("two `tidings serve` and an application on one SQLite file", () => {
  let setup: Setup;
  before(async () => {
    setup = await startSetup(file, 2);
  });
  after(async () => {
    await setup?.cluster.stop();
    await file.close();
  });

  it("gives both servers' subscribers, on every transport, one order of both servers' publishes", async () => {
    await oneOrderEverywhere(setup);
  });

  it("delivers an application's createBus publishes up to its kill -9 mid-publish, to live subscribers and tail from before them", async () => {
    const { cluster, subscriber, publisher } = setup;
    const [a, b] = cluster.urls as [string, string];
    const ch = `app-${randomBytes(3).toString("hex")}`;
    const start = await publish(a, publisher, { channel: ch, message: { type: "start" } });
    // Subscribers resume from their cursor every few messages, so some are catching up when it dies.
    const subs = subscribeEverywhere([a, b], subscriber, [ch], start).map((s) => s.resumeEvery(40));
    const app = startFixture("app-publisher.ts", { TIDINGS_TEST_STORE: file.storeUrl, TIDINGS_TEST_CHANNEL: ch });
    const load = new LoadPublisher([a, b], publisher, ch, 2);
    try {
      // The application publishes while both servers publish too: their appends interleave.
      load.start();
      const appAcked = (): string[] => app.events.filter((e) => e.event === "acked").flatMap((e) => e.ids as string[]);
      await app.waitFor(() => appAcked().length >= 30, "30 acknowledged publishes of the application", 20_000);
      await app.kill("SIGKILL");
      assert.equal(app.child.signalCode, "SIGKILL", "the application died of the kill, not of an error of its own");
      // The servers go on: publishes after the death reach everyone too.
      await load.ackedMore(10);
      await load.stop();
      const acked = [...appAcked(), ...load.acked];

      const expected = await file.read([ch], start);
      const logged = new Set(expected.map((m) => m.id));
      assert.deepEqual(acked.filter((id) => !logged.has(id)), [], "every acknowledged publish is in the log");
      const batches = new Map<number, number[]>();
      expected.forEach((m, i) => {
        const body = JSON.parse(m.json) as { type: string; batch?: number };
        if (body.type === "app-batch") batches.set(body.batch!, [...(batches.get(body.batch!) ?? []), i]);
      });
      assert.ok(batches.size > 0, "the application published batches");
      for (const [batch, at] of batches) {
        assert.deepEqual(at, [at[0]!, at[0]! + 1, at[0]! + 2], `batch ${batch}: its three messages, one after the other`);
      }
      await assertEveryoneGot(subs, expected);

      // A cursor from before the application's messages returns them.
      const tail = await runTidings(
        ["tail", "--url", b, "--db", "test", "--token", subscriber, "--channels", ch, "--last-message", start, "-n", String(expected.length)],
      );
      assert.equal(tail.code, 0, tail.stderr);
      const got = jsonLines(tail.stdout).map((l) => (l.message as { message_id: string }).message_id);
      assert.deepEqual(got, expected.map((m) => m.id), "tail --last-message");
    } finally {
      await load.stop();
      await app.kill("SIGKILL");
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
