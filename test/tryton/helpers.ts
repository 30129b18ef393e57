/**
 * What the Tryton tests share: PostgreSQL databases of their own (created and dropped by
 * each test file), a PostgreSQL tidings store in a schema of its own, and reading a whole
 * database's log through the long-poll wire with a deadline.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import type { TidingsServer } from "../../src/server.js";
import { token } from "../helpers/server.js";
export { postgresReachable } from "../helpers/store-engines.js";
import { call } from "../transports/longpoll-client.js";

export const BASE_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** The PostgreSQL server without a database: what `tryton.url` takes. */
export const SERVER_URL = ((): string => {
  const u = new URL(BASE_URL);
  u.pathname = "/";
  u.search = "";
  return u.toString();
})();

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString("hex")}`;
}

/** A connection to the server's maintenance database, for CREATE/DROP DATABASE. */
export function adminSql(): postgres.Sql {
  return postgres(BASE_URL, { max: 2, onnotice: () => {} });
}

export function sqlOn(db: string, max = 4): postgres.Sql {
  return postgres(SERVER_URL, { database: db, max, onnotice: () => {}, connection: { application_name: "tidings-test-tryton" } });
}

export async function dropDatabase(admin: postgres.Sql, db: string): Promise<void> {
  await admin`DROP DATABASE IF EXISTS ${admin(db)} WITH (FORCE)`;
}

/** A PostgreSQL store URL in a schema of its own (dropped by `dropSchema`). */
export function storeUrl(schema: string): string {
  const u = new URL(BASE_URL);
  u.searchParams.set("schema", schema);
  return u.toString();
}

export async function dropSchema(admin: postgres.Sql, schema: string): Promise<void> {
  await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
}

export interface Got {
  readonly channel: string;
  readonly message: Record<string, unknown>;
}

/**
 * Every message on `channels` of `db` after `after`, read with an admin token in batches,
 * until there are `count` (fails at the deadline naming how many came).
 */
export async function readLog(server: TidingsServer, db: string, channels: readonly string[], count: number, ms = 15_000): Promise<Got[]> {
  const tok = await token("ops", { db, role: "admin" });
  const out: Got[] = [];
  let after: string | null = null;
  const deadline = Date.now() + ms;
  while (out.length < count) {
    if (Date.now() > deadline) throw new Error(`read ${out.length} of ${count} messages of ${db} before the deadline`);
    const r = await call(`${server.url}/${db}/bus`, { token: tok, body: { last_message: after, channels, max_messages: 1000 } });
    if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${r.text}`);
    const body = r.json as { messages?: Got[]; gap?: boolean };
    if (body.gap === true && after !== null) throw new Error("the log reports a gap");
    for (const m of body.messages ?? []) {
      out.push(m);
      after = m.message["message_id"] as string;
    }
  }
  return out;
}

/** Waits until `predicate()` holds, checking every 20 ms; fails after `ms`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
