/**
 * Ingestion of what Tryton publishes, against a real PostgreSQL, without trytond itself
 * (test/tryton/trytond.test.ts runs the real server): the exact NOTIFY trytond's
 * `Bus.publish` sends, and the adapter's table, read by two tidings instances sharing a
 * PostgreSQL store. Every message must reach the log once, in order, with tidings' own id.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type postgres from "postgres";
import type { TidingsServer } from "../../src/server.js";
import { ADAPTER_TABLE_DDL } from "../../src/tryton/ingest.js";
import { resolveOptions } from "../../src/options.js";
import { loadOptionsInput } from "../../src/cli/config.js";
import { startServer } from "../helpers/server.js";
import { adminSql, dropDatabase, dropSchema, postgresReachable, readLog, SERVER_URL, sqlOn, storeUrl, uniqueName, until } from "./helpers.js";

const skip = process.env.CI === "true" || (await postgresReachable()) ? false : "PostgreSQL not reachable";

/** A message as trytond's JSONEncoder writes it: ASCII only (\u escapes), type hints as objects. */
function trytondPayload(channel: string, n: number): string {
  return (
    `{"channel":${JSON.stringify(channel)},"message":{"type":"notification","title":"Caf\\u00e9 n\\u00b0${n}",` +
    `"body":"\\ud83d\\ude00 ${n}","priority":1,"when":{"__class__":"datetime","year":2026,"month":1,"day":2,` +
    `"hour":3,"minute":4,"second":5,"microsecond":${n}},"amount":{"__class__":"Decimal","decimal":"${n}.10"},` +
    `"message_id":"0f6b7c1e-0000-4000-8000-${String(n).padStart(12, "0")}"}}`
  );
}

function expected(channel: string, n: number): { channel: string; message: Record<string, unknown> } {
  const { message } = JSON.parse(trytondPayload(channel, n)) as { message: Record<string, unknown> };
  const { message_id: _trytonId, ...rest } = message;
  return { channel, message: rest };
}

/** The messages without tidings' ids, after checking that every id is tidings' (not Tryton's uuid) and ascending. */
function withoutIds(got: readonly { channel: string; message: Record<string, unknown> }[]) {
  let last = "";
  return got.map(({ channel, message }) => {
    const { message_id: id, ...rest } = message;
    assert.equal(typeof id, "string");
    assert.doesNotMatch(id as string, /^0f6b7c1e-/, "Tryton's message_id must be replaced");
    assert.ok((id as string) > last, `ids ascend: ${String(id)} after ${last}`);
    last = id as string;
    return { channel, message: rest };
  });
}

describe("Tryton ingestion (NOTIFY and the adapter's table), two instances on a shared store", { skip }, () => {
  const db = uniqueName("tidings_ti");
  const schema = uniqueName("tidings_ti_store");
  let admin: postgres.Sql;
  let tryton: postgres.Sql;
  const servers: TidingsServer[] = [];

  async function instance(): Promise<TidingsServer> {
    const s = await startServer({
      store: storeUrl(schema),
      databases: [db],
      pollTimeoutMs: 300,
      tryton: { url: SERVER_URL, pollIntervalMs: 100 },
    });
    servers.push(s);
    return s;
  }
  const leaders = (): TidingsServer[] => servers.filter((s) => s.tryton?.leads(db) === true);

  before(async () => {
    admin = adminSql();
    await admin`CREATE DATABASE ${admin(db)}`;
    tryton = sqlOn(db, 10);
  });

  after(async () => {
    for (const s of servers) await s.close();
    await tryton?.end({ timeout: 5 });
    await dropDatabase(admin, db);
    await dropSchema(admin, schema);
    await admin.end({ timeout: 5 });
  });

  it("tryton.url is --tryton-url / TIDINGS_TRYTON_URL / tryton.url, accepts Tryton sessions, and needs named databases", () => {
    const o = resolveOptions(loadOptionsInput({ flags: { trytonUrl: SERVER_URL, databases: "a,b" }, env: {} }));
    assert.equal(o.tryton?.url, SERVER_URL);
    assert.equal(o.trytonSessions?.url, SERVER_URL, "Tryton sessions are accepted with the same server");
    assert.deepEqual(o.accessRules, [{ channels: "chat:*", databases: ["a", "b"] }]);
    const env = resolveOptions(loadOptionsInput({ env: { TIDINGS_TRYTON_URL: SERVER_URL, TIDINGS_TRYTON_CHAT: "rules", TIDINGS_DATABASES: "a" } }));
    assert.equal(env.tryton?.chat, "rules");
    assert.deepEqual(env.accessRules, []);
    assert.throws(() => resolveOptions({ tryton: { url: SERVER_URL }, databases: ["*"] }), /Tryton databases listed/);
    assert.throws(() => resolveOptions({ tryton: { url: `${SERVER_URL}tryton` } }), /must not name a database/);
    // The older option still works on its own, and wins for sessions when both are set.
    const both = resolveOptions({ tryton: { url: SERVER_URL }, trytonSessions: { url: "postgres://replica:5432/" }, databases: ["a"] });
    assert.equal(both.trytonSessions?.url, "postgres://replica:5432/");
  });

  it("one instance leads; trytond's NOTIFY payloads reach the log once each, in commit order, payload untouched", async () => {
    await instance();
    await instance();
    await until(() => leaders().length === 1, "a leader");
    // Let the standby try (and fail) to lead a few times.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(leaders().length, 1);

    const channels = ["user:1", "client:c1"];
    const want = [];
    for (let n = 0; n < 60; n++) {
      const channel = channels[n % 2]!;
      await tryton`SELECT pg_notify('bus', ${trytondPayload(channel, n)})`;
      want.push(expected(channel, n));
    }
    // A message tidings refuses (no type) is skipped, not a wedge.
    await tryton`SELECT pg_notify('bus', '{"channel":"user:1","message":{"message_id":"x"}}')`;
    await tryton`SELECT pg_notify('bus', ${trytondPayload("user:1", 60)})`;
    want.push(expected("user:1", 60));
    // Read through the instance that does not lead: the log is shared.
    const standby = servers.find((s) => !s.tryton!.leads(db))!;
    const got = await readLog(standby, db, channels, want.length);
    assert.deepEqual(withoutIds(got), want);
  });

  it("the adapter's rows: late commits are not skipped; order is transaction order; rows are deleted once ingested", async () => {
    await tryton.unsafe(ADAPTER_TABLE_DDL);
    const before = (await readLog(servers[0]!, db, ["user:1", "client:c1"], 61)).length;
    // Writer A takes its transaction id first, B second; B inserts and commits first.
    const a = await tryton.reserve();
    const b = await tryton.reserve();
    try {
      await a`BEGIN`;
      await a`SELECT pg_current_xact_id()`;
      await b`BEGIN`;
      await b`INSERT INTO tidings_bus (channel, message) VALUES ('user:1', '{"type":"t","n":"B"}')`;
      await a`INSERT INTO tidings_bus (channel, message) VALUES ('user:1', '{"type":"t","n":"A"}')`;
      await b`COMMIT`;
      // B is committed and visible, but A (an older transaction) still runs: nothing may be read past it.
      await tryton`SELECT pg_notify('tidings_bus', '')`;
      await new Promise((r) => setTimeout(r, 400));
      // (A's row is not visible yet to this count; B's is, and must still be there.)
      assert.deepEqual([...(await tryton`SELECT message FROM tidings_bus`)], [{ message: '{"type":"t","n":"B"}' }], "B waits behind A");
      await a`COMMIT`;
    } finally {
      await a`ROLLBACK`.catch(() => {});
      await b`ROLLBACK`.catch(() => {});
      a.release();
      b.release();
    }
    const got = await readLog(servers[0]!, db, ["user:1", "client:c1"], before + 2);
    assert.deepEqual(got.slice(before).map((m) => m.message["n"]), ["A", "B"]);
    await until(async () => (await tryton`SELECT count(*)::int AS n FROM tidings_bus`)[0]!.n === 0, "the rows deleted");
  });

  it("concurrent writers with delayed, interleaved commits: every row once, each writer's rows in its order", async () => {
    const start = (await readLog(servers[0]!, db, ["user:1", "client:c1"], 63)).length;
    const writers = 6;
    const perWriter = 15;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          await tryton.begin(async (tx) => {
            await tx`INSERT INTO tidings_bus (channel, message) VALUES ('client:c1', ${JSON.stringify({ type: "t", w, i })})`;
            // Hold the transaction open a random while: commits interleave out of id order.
            await new Promise((r) => setTimeout(r, Math.random() * 30));
            await tx`SELECT pg_notify('tidings_bus', '')`;
          });
        }
      }),
    );
    const got = (await readLog(servers[1]!, db, ["user:1", "client:c1"], start + writers * perWriter)).slice(start);
    const seen = new Set<string>();
    const next = new Array<number>(writers).fill(0);
    for (const { message } of got) {
      const key = `${String(message["w"])}/${String(message["i"])}`;
      assert.ok(!seen.has(key), `duplicate ${key}`);
      seen.add(key);
      const w = message["w"] as number;
      assert.equal(message["i"], next[w], `writer ${w} in order`);
      next[w]!++;
    }
    assert.equal(seen.size, writers * perWriter);
  });

  it("the leader closes: the standby takes over, and what was stored meanwhile arrives in order", async () => {
    const leader = leaders()[0]!;
    const standby = servers.find((s) => s !== leader)!;
    const channels = ["user:2"];
    await leader.close();
    servers.splice(servers.indexOf(leader), 1);
    for (let n = 0; n < 20; n++) {
      await tryton`INSERT INTO tidings_bus (channel, message) VALUES ('user:2', ${JSON.stringify({ type: "t", n })})`;
    }
    await until(() => standby.tryton!.leads(db), "the standby to lead");
    const got = await readLog(standby, db, channels, 20);
    assert.deepEqual(
      got.map((m) => m.message["n"]),
      Array.from({ length: 20 }, (_, n) => n),
    );
  });
});
