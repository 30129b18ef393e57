/**
 * An instance that learns late of what other instances appended — a lost wake-up, a long
 * store outage — may find that retention (or a wipe of the store) removed messages past
 * everything it had read. Its live subscribers, on every transport, were past that point:
 * they must be told of the gap before the messages that follow, as a client resuming from
 * an old cursor is (DESIGN §3.2). Engine-free: two buses on one memory log, the lagging
 * one's wake-ups held back until the test releases them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TidingsBus as Bus } from "../../src/bus.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import type { TidingsServer } from "../../src/server.js";
import { startServer } from "../helpers/server.js";
import { CountingStore } from "../core/counting-store.js";
import { DB, SECRET, Signal, publish, token } from "./helpers.js";
import { LongPollSubscriber, SseSubscriber, WsSubscriber, type Subscriber } from "./subscribers.js";

/** A shared store whose wake-ups wait until `release()`, as if the instance missed them. */
class HeldWakeups extends CountingStore {
  private readonly held = new Set<(db: string) => void>();
  override onAppend(listener: (db: string) => void): () => void {
    this.held.add(listener);
    return () => this.held.delete(listener);
  }
  release(db: string): void {
    for (const l of this.held) l(db);
  }
}

describe("an instance that fell behind retention", () => {
  const log = new MemoryStore();
  const lagging = new HeldWakeups({ shared: true, inner: log });
  let server: TidingsServer;
  let other: Bus;
  before(async () => {
    server = await startServer({ storeInstance: lagging, secret: SECRET, databases: [DB] });
    other = await Bus.create({ storeInstance: new CountingStore({ shared: true, inner: log }), databases: [DB], logLevel: "silent" });
  });
  after(async () => {
    await server?.close();
    await other?.close();
  });

  it("tells its live subscribers of every transport of the gap, then delivers what follows", async () => {
    const [subscriber, publisher] = [await token("u1"), await token("app", "publisher")];
    const start = await publish(server.url, publisher, { channel: "c", message: { type: "start" } });
    const urls = [server.url];
    const subs: Subscriber[] = [
      new LongPollSubscriber(urls, 0, subscriber, ["c"], start),
      new WsSubscriber(urls, 0, subscriber, ["c"], start),
      new SseSubscriber(urls, 0, subscriber, ["c"], start),
    ];
    try {
      // All three are live: parked or subscribed after `start`.
      const dbLog = server.bus.log(DB);
      const registered = new Signal();
      const timer = setInterval(() => registered.notify(), 5).unref();
      await registered
        .wait(() => dbLog.listenerCount === 3, () => `3 listeners (have ${dbLog.listenerCount})`, 10_000)
        .finally(() => clearInterval(timer));

      // Another instance appends, then retention keeps only the newest: `start` and what
      // followed it are gone before the lagging instance read them.
      const [, , kept] = await other.publishMany(DB, [
        { channel: "c", message: { type: "lost", n: 1 } },
        { channel: "c", message: { type: "lost", n: 2 } },
        { channel: "c", message: { type: "kept" } },
      ]);
      assert.equal(await other.store.trim(DB, { maxAgeMs: 0, maxCount: 1 }, Date.now()), 3);
      lagging.release(DB);

      await Promise.all(subs.map((s) => s.reaches(kept!)));
      for (const s of subs) {
        assert.equal(s.gaps, 1, `${s.label}: told of the gap`);
        assert.deepEqual(s.ids, [kept], `${s.label}: then what was retained`);
      }
    } finally {
      for (const s of subs) s.close();
    }
  });
});
