/**
 * On PostgreSQL, readers see only below the oldest open write transaction: an operator
 * must be able to see that lag on /metrics before it becomes a stall.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer } from "../helpers/server.js";
import { signToken } from "../../src/auth/tokens.js";
import { postgresEngine } from "./engines.js";
import { DB, SECRET } from "./helpers.js";

const engine = await postgresEngine();

async function lagSeconds(server: TidingsServer): Promise<number> {
  // /metrics needs credentials by default: an admin token of any database reads it.
  const admin = await signToken(SECRET, { db: DB, user: "ops", role: "admin" });
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
  const line = text.split("\n").find((l) => l.startsWith("tidings_store_horizon_lag_seconds "));
  assert.ok(line, "the gauge is exported");
  return Number(line.split(" ")[1]);
}

describe("PostgreSQL horizon lag on /metrics", { skip: engine.skip }, () => {
  let server: TidingsServer;
  before(async () => {
    server = await startServer({ store: engine.storeUrl, secret: SECRET, databases: [DB] });
  });
  after(async () => {
    await server?.close();
    await engine.close();
  });

  it("shows at least the age of a write transaction held open", async () => {
    const sql = engine.admin();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const open = new Promise<void>((r) => (started = r));
    const tx = sql.begin(async (t) => {
      await t`SELECT pg_current_xact_id()`; // takes a transaction id: a writer from now on
      started();
      await held;
    });
    await open;
    await new Promise((r) => setTimeout(r, 300));
    const during = await lagSeconds(server);
    release();
    await tx;
    // Only a lower bound: test files running beside this one may hold older transactions.
    assert.ok(during >= 0.25, `lag while a transaction is open: ${during} s`);
  });
});
