/**
 * The store goes away under a running server: PostgreSQL behind a TCP relay that the test
 * makes drop and refuse connections, a Redis of the test's own killed. A publish then
 * answers 503 TIDINGS_ERR_STORE_UNAVAILABLE (retry later), not 500, naming no host; the
 * server keeps serving, and once the store is back the same publish succeeds and what was
 * acknowledged before is still there. SQLite's write lock held by another process past
 * busy_timeout is classified the same way.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import postgres from "postgres";
import type { TidingsServer } from "../../src/server.js";
import { storeUnavailable } from "../../src/stores/store-errors.js";
import { startServer, token } from "../helpers/server.js";
import { POSTGRES_URL as PG_URL, postgresReachable } from "../helpers/store-engines.js";
import { call, type Reply } from "../transports/longpoll-client.js";
import { PrivateRedis, redisServerMissing } from "../scale-out/engines.js";
import { portOf, Relay } from "../commands/processes.js";

async function publish(server: TidingsServer, db: string, n: number): Promise<Reply> {
  return call(`${server.url}/${db}/publish`, {
    token: await token("erp", { db, role: "publisher" }),
    body: { channel: "orders", message: { type: "order", n } },
  });
}

/** What follows `after` on the channel: a cursor the store no longer knows would say `gap`. */
async function readAfter(server: TidingsServer, db: string, after: string): Promise<{ gap: boolean; ns: number[] }> {
  const r = await call(`${server.url}/${db}/bus`, {
    token: await token("reader", { db, channels: ["orders"] }),
    body: { last_message: after, channels: ["orders"], max_messages: 100 },
  });
  assert.equal(r.status, 200, r.text);
  const body = r.json as { gap?: boolean; messages: Array<{ message: { n: number } }> };
  return { gap: body.gap === true, ns: body.messages.map((m) => m.message.n) };
}

function idOf(r: Reply): string {
  assert.equal(r.status, 200, r.text);
  return (r.json as { message_id: string }).message_id;
}

/** Publishes `n` until the store is back (each refusal meanwhile must be the 503), within `ms`. */
async function publishOnceBack(server: TidingsServer, n: number, engine: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let r = await publish(server, "test", n);
  while (r.status !== 200 && Date.now() < deadline) {
    unavailable(r, engine);
    await new Promise((ok) => setTimeout(ok, 100));
    r = await publish(server, "test", n);
  }
  assert.equal(r.status, 200, r.text);
}

function unavailable(r: Reply, engine: string): void {
  assert.equal(r.status, 503, r.text);
  assert.deepEqual(r.json, { error: { code: "TIDINGS_ERR_STORE_UNAVAILABLE", message: `The ${engine} store cannot be reached now. Retry shortly.` } });
}

const pgSkip = process.env.CI === "true" || (await postgresReachable()) ? false : "PostgreSQL not reachable";

describe("PostgreSQL unreachable under a running server", { skip: pgSkip }, () => {
  const schema = `t_unavail_${randomBytes(4).toString("hex")}`;
  let relay: Relay;
  let server: TidingsServer;

  before(async () => {
    const url = new URL(PG_URL);
    relay = await Relay.start(Number(url.port || 5432), url.hostname);
    url.port = String(portOf(relay.url));
    url.searchParams.set("schema", schema);
    server = await startServer({ store: url.toString(), pollTimeoutMs: 200 });
  });
  after(async () => {
    await server?.close();
    await relay?.close();
    const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end({ timeout: 5 });
  });

  it("answers 503 while PostgreSQL cannot be reached, and publishes again once it can, nothing lost", async () => {
    const first = idOf(await publish(server, "test", 1));
    relay.refuseConnections = true;
    relay.cut();
    unavailable(await publish(server, "test", 2), "postgres");
    // The server itself still answers.
    assert.equal((await call(`${server.url}/healthz`, { method: "GET" })).status, 200);
    relay.refuseConnections = false;
    await publishOnceBack(server, 3, "postgres", 10_000);
    // The first message is still known, and only the third follows it.
    assert.deepEqual(await readAfter(server, "test", first), { gap: false, ns: [3] });
  });
});

const redisSkip = process.env.CI === "true" ? false : redisServerMissing;

describe("Redis killed under a running server", { skip: redisSkip }, () => {
  let redis: PrivateRedis;
  let server: TidingsServer;

  before(async () => {
    redis = await PrivateRedis.start();
    server = await startServer({ store: redis.url, pollTimeoutMs: 200 });
  });
  after(async () => {
    await server?.close();
    await redis?.stop();
  });

  it("answers 503 once Redis stops retrying the command, and publishes again after its restart, nothing lost", async () => {
    const first = idOf(await publish(server, "test", 1));
    await redis.kill();
    unavailable(await publish(server, "test", 2), "redis");
    await redis.restart();
    await publishOnceBack(server, 3, "redis", 15_000);
    assert.deepEqual(await readAfter(server, "test", first), { gap: false, ns: [3] });
  });
});

describe("SQLite's write lock held by another process", () => {
  const dir = mkdtempSync(join(tmpdir(), "tidings-busy-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is a store that cannot be reached now (503), as a lost connection is; other failures are not", () => {
    // better-sqlite3 waits busy_timeout on the event loop, so the server is not run here:
    // the error is SQLite's own, raised by a second connection.
    const file = join(dir, "busy.db");
    const holder = new Database(file);
    holder.pragma("journal_mode = WAL");
    holder.exec("CREATE TABLE t (x)");
    const writer = new Database(file);
    writer.pragma("busy_timeout = 0");
    holder.exec("BEGIN IMMEDIATE");
    let busy: unknown;
    try {
      writer.exec("INSERT INTO t VALUES (1)");
    } catch (e) {
      busy = e;
    } finally {
      holder.exec("ROLLBACK");
    }
    assert.equal((busy as { code?: string }).code, "SQLITE_BUSY");
    const mapped = storeUnavailable(busy, "sqlite");
    assert.deepEqual([mapped?.code, mapped?.status, mapped?.message], ["TIDINGS_ERR_STORE_UNAVAILABLE", 503, "The sqlite store cannot be reached now. Retry shortly."]);
    let constraint: unknown;
    try {
      writer.exec("INSERT INTO no_such_table VALUES (1)");
    } catch (e) {
      constraint = e;
    }
    assert.equal(storeUnavailable(constraint, "sqlite"), null);
    holder.close();
    writer.close();
  });
});
