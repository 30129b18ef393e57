/**
 * Transactional publish (DESIGN §3.3, issue 5): an application publishes inside its own
 * PostgreSQL transaction, from TypeScript (`publishInTransaction` with its postgres.js
 * transaction) or from SQL (`<schema>.publish(db, channel, message)`), and the message
 * reaches subscribers of every instance when, and only if, that transaction commits.
 * The application's own process is instance A (an in-process server whose bus it uses);
 * B and C are `tidings serve` processes on the same schema.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { TidingsBus as Bus } from "../../src/bus.js";
import { publishInTransaction, publishManyInTransaction } from "../../src/core/transactional.js";
import { TidingsError } from "../../src/errors.js";
import type { TidingsServer } from "../../src/server.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { request, startServer } from "../helpers/server.js";
import { postgresEngine } from "./engines.js";
import { Cluster, DB, SECRET, publish, token } from "./helpers.js";
import { assertEveryoneGot } from "./scenarios.js";
import { subscribeEverywhere } from "./subscribers.js";

const engine = await postgresEngine();

class Rollback extends Error {}

describe("transactional publish across instances on PostgreSQL", { skip: engine.skip }, () => {
  let app: TidingsServer;
  let cluster: Cluster;
  before(async () => {
    // A short poll timeout: a poll made while the transaction is open is answered empty.
    [app, cluster] = await Promise.all([
      startServer({ store: engine.storeUrl, secret: SECRET, databases: [DB], pollTimeoutMs: 1000 }),
      Cluster.start(engine.storeUrl, 2, ["--poll-timeout", "1s"]),
    ]);
  });
  after(async () => {
    await Promise.all([app?.close(), cluster?.stop()]);
    await engine.close();
  });

  it("delivers on every instance what committed, never what rolled back, from TypeScript and SQL", async () => {
    const sql = engine.admin(); // the application's own connection
    const [subscriber, publisher] = [await token("u1"), await token("app", "publisher")];
    const ch = `tx-${randomBytes(3).toString("hex")}`;
    const urls = [app.url, ...cluster.urls];
    const start = await publish(urls[1]!, publisher, { channel: ch, message: { type: "start" } });
    const subs = subscribeEverywhere(urls, subscriber, [ch], start);
    try {
      // TypeScript, committed: nothing can be read while the transaction is open.
      const [fromTs] = await sql.begin(async (tx) => {
        await tx`SELECT 1`; // the application's own work would be here
        const id = await publishInTransaction(app.bus, tx, DB, ch, { type: "invoice", id: 42, message_id: "forged" });
        const probe = await request(`${urls[2]!}/${DB}/bus`, { token: subscriber, body: { last_message: start, channels: [ch] } });
        assert.deepEqual(probe.body, { channel: null, message: null }, "a poll during the transaction times out empty");
        return [id];
      });

      // TypeScript, rolled back.
      let rolledBack: string[] = [];
      await assert.rejects(
        sql.begin(async (tx) => {
          rolledBack = await publishManyInTransaction(app.bus, tx, DB, [
            { channel: ch, message: { type: "never", n: 1 } },
            { channel: ch, message: { type: "never", n: 2 } },
          ]);
          throw new Rollback();
        }),
        Rollback,
      );

      // SQL, committed and rolled back.
      const fn = sql(engine.schema);
      const [fromSql] = await sql.begin(async (tx) => {
        const [row] = await tx<{ id: string }[]>`SELECT ${fn}.publish(${DB}, ${ch}, ${tx.json({ type: "sql", lines: [1, 2] })}) AS id`;
        return [row!.id];
      });
      let sqlRolledBack = "";
      await assert.rejects(
        sql.begin(async (tx) => {
          const [row] = await tx<{ id: string }[]>`SELECT ${fn}.publish(${DB}, ${ch}, '{"type": "never"}'::jsonb) AS id`;
          sqlRolledBack = row!.id;
          throw new Rollback();
        }),
        Rollback,
      );

      const end = await publish(urls[2]!, publisher, { channel: ch, message: { type: "end" } });
      const expected = await engine.read([ch], start);
      assert.deepEqual(expected.map((m) => m.id), [fromTs, fromSql, end]);
      assert.equal(rolledBack.length, 2);
      for (const id of [...rolledBack, sqlRolledBack]) assert.ok(!expected.some((m) => m.id === id), `${id} rolled back`);
      assert.deepEqual(JSON.parse(expected[0]!.json), { message_id: fromTs, type: "invoice", id: 42 });
      assert.deepEqual(JSON.parse(expected[1]!.json), { message_id: fromSql, type: "sql", lines: [1, 2] });
      // Every instance, the application's own included, learned of them at commit.
      await assertEveryoneGot(subs, expected);
    } finally {
      for (const s of subs) s.close();
    }
  });

  it("validates the message like bus.publish, before the transaction is touched", async () => {
    const sql = engine.admin();
    const ch = `tx-${randomBytes(3).toString("hex")}`;
    const ok = await sql.begin(async (tx) => {
      await assert.rejects(publishInTransaction(app.bus, tx, DB, ch, { no: "type" }), { code: "TIDINGS_ERR_MESSAGE_INVALID" });
      await assert.rejects(publishInTransaction(app.bus, tx, DB, "", { type: "t" }), { code: "TIDINGS_ERR_CHANNEL_INVALID" });
      await assert.rejects(publishInTransaction(app.bus, tx, "elsewhere", ch, { type: "t" }), { code: "TIDINGS_ERR_DB_UNKNOWN" });
      // The transaction is still usable: nothing was sent to it.
      return publishInTransaction(app.bus, tx, DB, ch, { type: "t" });
    });
    assert.deepEqual((await engine.read([ch], null)).map((m) => m.id), [ok]);
  });
});

describe("transactional publish on a store without transactions", () => {
  it("throws TIDINGS_ERR_CONFIG naming the engine", async () => {
    const bus = await Bus.create({ storeInstance: new MemoryStore(), databases: [DB], logLevel: "silent" });
    try {
      const err = await publishInTransaction(bus, {} as never, DB, "c", { type: "t" }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof TidingsError);
      assert.equal(err.code, "TIDINGS_ERR_CONFIG");
      assert.match(err.message, /memory store cannot publish inside an application transaction/);
    } finally {
      await bus.close();
    }
  });
});
