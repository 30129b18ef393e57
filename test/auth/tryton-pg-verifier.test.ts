/**
 * Tryton's own `Authorization: Session base64(login:user_id:key)` checked against Tryton's
 * tables in a real PostgreSQL: a throwaway database shaped like Tryton's (`res_user`,
 * `ir_session`), a tidings server configured with `trytonSessions` (as `tidings serve`
 * is), and the exact JSON a Tryton client gets.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import postgres from "postgres";
import type { TidingsServer } from "../../src/server.js";
import { TrytonPostgresVerifier } from "../../src/auth/tryton-pg-verifier.js";
import { loadOptionsInput } from "../../src/cli/config.js";
import { resolveOptions } from "../../src/options.js";
import { TidingsError } from "../../src/errors.js";
import { startServer, token } from "../helpers/server.js";
import { call, errorBody, oneMessage, parked, type Reply } from "../transports/longpoll-client.js";
import { serve, tempDir } from "../cli/cli-process.js";

const BASE_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** The throwaway Tryton database; also the tidings database name. */
const DB = `tidings_tryton_${process.pid}_${randomBytes(3).toString("hex")}`;
/** Tryton's PostgreSQL server, without a database: what `trytonSessions.url` takes. */
const SERVER_URL = ((): string => {
  const u = new URL(BASE_URL);
  u.pathname = "/";
  u.search = "";
  return u.toString();
})();

async function reachable(): Promise<boolean> {
  const probe = postgres(BASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

// Under CI a missing database is a failure, never a silent skip.
const skip = process.env.CI === "true" || (await reachable()) ? false : `PostgreSQL not reachable at ${new URL(BASE_URL).host}`;

const INVALID = errorBody("TIDINGS_ERR_AUTH_INVALID", "Unknown or expired Tryton session.");
const EMPTY = JSON.stringify({ channel: null, message: null });
const DAY = 86_400;

let admin: postgres.Sql | null = null;
let tryton: postgres.Sql | null = null;

function sqlTryton(): postgres.Sql {
  tryton ??= postgres(SERVER_URL, { database: DB, max: 2, onnotice: () => {} });
  return tryton;
}

/** Users as Tryton has them: admin (1), alice (7), bob (8, deactivated). */
const USERS = { admin: 1, alice: 7, bob: 8 } as const;
type Login = keyof typeof USERS;

before(async () => {
  if (skip) return;
  admin = postgres(BASE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE ${admin(DB)}`;
  const sql = sqlTryton();
  // The columns trytond gives these tables (timestamps are naive UTC, as trytond runs in UTC).
  await sql`CREATE TABLE res_user (
    id serial PRIMARY KEY, login varchar NOT NULL UNIQUE, active boolean DEFAULT true,
    create_date timestamp(6), write_date timestamp(6))`;
  await sql`CREATE TABLE ir_session (
    id serial PRIMARY KEY, key varchar NOT NULL, ip_address varchar,
    create_uid integer REFERENCES res_user (id), create_date timestamp(6),
    write_uid integer, write_date timestamp(6))`;
  await sql`INSERT INTO res_user (id, login, active, create_date) VALUES
    (1, 'admin', true, now() AT TIME ZONE 'UTC'),
    (7, 'alice', true, now() AT TIME ZONE 'UTC'),
    (8, 'bob', false, now() AT TIME ZONE 'UTC')`;
});

after(async () => {
  try {
    await tryton?.end({ timeout: 5 });
    if (admin) {
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${DB} AND pid <> pg_backend_pid()`;
      await admin`DROP DATABASE IF EXISTS ${admin(DB)}`;
    }
  } finally {
    await admin?.end({ timeout: 5 });
  }
});

/**
 * A session row as trytond 8's `Session.new()` makes it (a 64-hex-digit key, bound to the
 * address the user logged in from: here the tests' own, 127.0.0.1), created `createdAgo`
 * seconds ago and last written `writtenAgo` seconds ago (null: never written).
 */
async function newSession(login: Login, opts: { createdAgo?: number; writtenAgo?: number | null; address?: string | null } = {}): Promise<string> {
  const key = randomBytes(32).toString("hex");
  const created = opts.createdAgo ?? 0;
  const written = opts.writtenAgo ?? null;
  const address = opts.address === undefined ? "127.0.0.1" : opts.address;
  await sqlTryton()`INSERT INTO ir_session (key, ip_address, create_uid, create_date, write_uid, write_date) VALUES (
    ${key}, ${address}, ${USERS[login]},
    (now() AT TIME ZONE 'UTC') - make_interval(secs => ${created}),
    ${written === null ? null : USERS[login]},
    (now() AT TIME ZONE 'UTC') - make_interval(secs => ${written}::float8))`;
  return key;
}

/** `Authorization: Session base64(login:user_id:key)`, as Tryton's clients build it. */
function sessionHeader(login: string, userId: number | string, key: string): string {
  return `Session ${Buffer.from(`${login}:${userId}:${key}`).toString("base64")}`;
}

function pollAs(server: TidingsServer, authorization: string, body: unknown = { last_message: null, channels: [] }, db = DB): Promise<Reply> {
  return call(`${server.url}/${db}/bus`, { headers: { authorization }, body });
}

async function publishTo(server: TidingsServer, channel: string, message: Record<string, unknown>): Promise<string> {
  const r = await call(`${server.url}/${DB}/publish`, { token: await token("erp", { db: DB, role: "publisher" }), body: { channel, message } });
  assert.equal(r.status, 200, r.text);
  return (r.json as { message_id: string }).message_id;
}

describe("Tryton sessions from Tryton's PostgreSQL", { skip }, () => {
  let server: TidingsServer;
  /** Same, with polls answered empty at once, to read the outcome of authentication quickly. */
  let quick: TidingsServer;

  before(async () => {
    server = await startServer({ databases: [DB], trytonSessions: { url: SERVER_URL } });
    quick = await startServer({ databases: [DB], trytonSessions: { url: SERVER_URL }, pollTimeoutMs: 20 });
  });
  after(async () => {
    await server?.close();
    await quick?.close();
  });

  it("accepts a valid session: a long-poll parks and receives the user's message", async () => {
    const key = await newSession("alice", { createdAgo: 3600, writtenAgo: 60 });
    const polling = pollAs(server, sessionHeader("alice", 7, key), { last_message: null, channels: ["user:7"] });
    await parked(server, 1, DB);
    const id = await publishTo(server, "user:7", { type: "notification", title: "Invoice 42 posted" });
    const r = await polling;
    assert.equal(r.status, 200);
    assert.equal(r.text, oneMessage("user:7", id, { type: "notification", title: "Invoice 42 posted" }));
  });

  it("measures idleness from write_date when there is one, else from create_date", async () => {
    // Created 20 days ago (within max_age) but used an hour ago: valid.
    const used = await newSession("alice", { createdAgo: 20 * DAY, writtenAgo: 3600 });
    // Created 8 days ago and never written: idle for longer than the 7-day timeout.
    const idle = await newSession("alice", { createdAgo: 8 * DAY, writtenAgo: null });
    const ok = await pollAs(quick, sessionHeader("alice", 7, used));
    assert.deepEqual([ok.status, ok.text], [200, EMPTY]);
    const refused = await pollAs(quick, sessionHeader("alice", 7, idle));
    assert.deepEqual([refused.status, refused.text], [401, INVALID]);
  });

  it("refuses wrong keys, wrong user ids, another login, inactive users and expired sessions with 401", async () => {
    const alice = await newSession("alice");
    const bob = await newSession("bob");
    const idle = await newSession("alice", { createdAgo: 9 * DAY, writtenAgo: 8 * DAY });
    // trytond's session.max_age counts from creation, however recently the session was used.
    const old = await newSession("alice", { createdAgo: 31 * DAY, writtenAgo: 60 });
    const cases: Array<[string, string]> = [
      ["wrong key", sessionHeader("alice", 7, randomBytes(32).toString("hex"))],
      ["wrong user id", sessionHeader("alice", 1, alice)],
      ["another user's login", sessionHeader("admin", 7, alice)],
      ["inactive user", sessionHeader("bob", 8, bob)],
      ["idle past the timeout", sessionHeader("alice", 7, idle)],
      ["older than max_age", sessionHeader("alice", 7, old)],
      ["user id beyond PostgreSQL's integer", sessionHeader("alice", "99999999999", alice)],
    ];
    for (const [what, header] of cases) {
      const r = await pollAs(quick, header);
      assert.deepEqual([r.status, r.text, r.headers.get("www-authenticate")], [401, INVALID, 'Bearer realm="tidings"'], what);
    }
    // The same credentials, right, are accepted: each refusal above is for its one reason.
    const r = await pollAs(quick, sessionHeader("alice", 7, alice));
    assert.deepEqual([r.status, r.text], [200, EMPTY]);
  });

  it("accepts trytond 8's tryton_session cookie (sao 8 sends no header), quoted or not, only from the page's own origin", async () => {
    const key = await newSession("alice");
    const poll = (cookie: string, headers: Record<string, string> = {}) => call(`${quick.url}/${DB}/bus`, { headers: { cookie, ...headers }, body: { last_message: null, channels: ["user:7"] } });
    const host = new URL(quick.url).host;
    // As the browser sends it: the cookie among others, from a page of this origin.
    const ok = await poll(`theme=dark; tryton_session=alice:7:${key}`, { origin: `http://${host}` });
    assert.deepEqual([ok.status, ok.text], [200, EMPTY]);
    // werkzeug quotes a value holding a space or a non-ASCII character, with octal escapes.
    await sqlTryton()`UPDATE res_user SET login = 'alicé b' WHERE id = 7`;
    try {
      const quoted = await poll(`tryton_session="alic\\303\\251 b:7:${key}"`);
      assert.deepEqual([quoted.status, quoted.text], [200, EMPTY]);
    } finally {
      await sqlTryton()`UPDATE res_user SET login = 'alice' WHERE id = 7`;
    }
    // A page of another site may make the browser send the cookie (a form): refused.
    const forged = await poll(`tryton_session=alice:7:${key}`, { origin: "https://evil.example" });
    assert.deepEqual([forged.status, (forged.json as { error: { code: string } }).error.code], [403, "TIDINGS_ERR_ORIGIN_FORBIDDEN"]);
    const wrong = await poll(`tryton_session=alice:7:${randomBytes(32).toString("hex")}`);
    assert.deepEqual([wrong.status, wrong.text], [401, INVALID]);
    const malformed = await poll(`tryton_session=${Buffer.from(`alice:7:${key}`).toString("base64")}`);
    assert.deepEqual([malformed.status, malformed.text], [401, errorBody("TIDINGS_ERR_AUTH_INVALID", "The tryton_session cookie must be login:user_id:key.")]);
  });

  it("holds a session to the address it was made from (trytond 8), seen through trustedProxies as trytond sees it", async (t) => {
    const proxied = await startServer({ databases: [DB], trytonSessions: { url: SERVER_URL }, pollTimeoutMs: 20, trustedProxies: 1 });
    t.after(() => proxied.close());
    const key = await newSession("alice", { address: "203.0.113.9" });
    const header = sessionHeader("alice", 7, key);
    const poll = (server: TidingsServer, forwardedFor?: string) =>
      call(`${server.url}/${DB}/bus`, { headers: { authorization: header, ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}) }, body: { last_message: null, channels: [] } });
    // Directly from 127.0.0.1: not the session's address.
    assert.deepEqual([(await poll(quick)).status], [401]);
    // X-Forwarded-For is not believed without a trusted proxy.
    assert.deepEqual([(await poll(quick, "203.0.113.9")).status], [401]);
    // Behind one proxy, the address it appended is the client's; what the client itself
    // put before it is not.
    const ok = await poll(proxied, "198.51.100.1, 203.0.113.9");
    assert.deepEqual([ok.status, ok.text], [200, EMPTY]);
    assert.equal((await poll(proxied, "203.0.113.9, 198.51.100.1")).status, 401);
    // A session of no address (made outside a web request) is accepted only from no address: never here.
    const nowhere = await newSession("alice", { address: null });
    assert.equal((await pollAs(quick, sessionHeader("alice", 7, nowhere))).status, 401);
  });

  it("caches accepted sessions for cacheSeconds, never refusals, and never past the session's end", async (t) => {
    let now = Date.now();
    const verifier = new TrytonPostgresVerifier({ url: SERVER_URL, cacheSeconds: 30, now: () => now });
    const cached = await startServer({ databases: [DB], sessionVerifier: verifier, pollTimeoutMs: 20 });
    t.after(async () => {
      await cached.close();
      await verifier.close();
    });
    const status = async (header: string): Promise<number> => (await pollAs(cached, header)).status;

    // Accepted, then logged out in Tryton (the row deleted): still accepted within the cache time.
    const key = await newSession("alice");
    assert.equal(await status(sessionHeader("alice", 7, key)), 200);
    await sqlTryton()`DELETE FROM ir_session WHERE key = ${key}`;
    assert.equal(await status(sessionHeader("alice", 7, key)), 200);
    now += 29_000;
    assert.equal(await status(sessionHeader("alice", 7, key)), 200);
    now += 2_000;
    assert.equal(await status(sessionHeader("alice", 7, key)), 401);

    // A refusal is not remembered: once Tryton has the session, it is accepted at once.
    const later = randomBytes(32).toString("hex");
    assert.equal(await status(sessionHeader("alice", 7, later)), 401);
    await sqlTryton()`INSERT INTO ir_session (key, ip_address, create_uid, create_date) VALUES (${later}, '127.0.0.1', 7, now() AT TIME ZONE 'UTC')`;
    assert.equal(await status(sessionHeader("alice", 7, later)), 200);

    // A session 10 s from its idle timeout is cached 10 s, not 30.
    const ending = await newSession("alice", { createdAgo: 7 * DAY, writtenAgo: 7 * DAY - 10 });
    assert.equal(await status(sessionHeader("alice", 7, ending)), 200);
    await sqlTryton()`DELETE FROM ir_session WHERE key = ${ending}`;
    now += 11_000;
    assert.equal(await status(sessionHeader("alice", 7, ending)), 401);
  });

  it("answers 404 for a database Tryton does not have, as Tryton does", async (t) => {
    const missing = `${DB}_missing`;
    const other = await startServer({ databases: [missing], trytonSessions: { url: SERVER_URL } });
    t.after(() => other.close());
    const r = await pollAs(other, sessionHeader("alice", 7, "k"), undefined, missing);
    assert.deepEqual([r.status, r.text], [404, errorBody("TIDINGS_ERR_DB_UNKNOWN", `Tryton has no database named ${JSON.stringify(missing)}.`)]);
  });

  it("works with `tidings serve` configured by TIDINGS_TRYTON_SESSIONS_URL and flags", async (t) => {
    const dir = tempDir();
    const served = await serve(["--store", "memory:", "--data-dir", dir.path, "--databases", DB, "--poll-timeout", "20ms", "--tryton-sessions-cache-seconds", "0"], {
      TIDINGS_TRYTON_SESSIONS_URL: SERVER_URL,
    });
    t.after(async () => {
      await served.stop("SIGKILL");
      dir.remove();
    });
    const key = await newSession("alice");
    const post = (header: string) => call(`${served.url}/${DB}/bus`, { headers: { authorization: header }, body: { last_message: null, channels: [] } });
    const ok = await post(sessionHeader("alice", 7, key));
    assert.deepEqual([ok.status, ok.text], [200, EMPTY]);
    // cacheSeconds 0: a logout in Tryton takes effect on the next poll.
    await sqlTryton()`DELETE FROM ir_session WHERE key = ${key}`;
    const refused = await post(sessionHeader("alice", 7, key));
    assert.deepEqual([refused.status, refused.text], [401, INVALID]);
    assert.equal(await served.stop("SIGTERM"), 0);
  });
});

describe("Tryton's database unreachable", () => {
  it("answers 503 TIDINGS_ERR_AUTH_UNAVAILABLE, not 401, and the server keeps serving", async (t) => {
    // A port that was free a moment ago: connections to it are refused.
    const probe = createNetServer();
    await new Promise<void>((ok) => probe.listen(0, "127.0.0.1", ok));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((ok) => probe.close(() => ok()));

    const server = await startServer({ databases: ["erp"], trytonSessions: { url: `postgres://tryton@127.0.0.1:${port}/` } });
    t.after(() => server.close());
    const header = sessionHeader("alice", 7, "0123456789abcdef");
    const r = await pollAs(server, header, { last_message: null, channels: [] }, "erp");
    assert.deepEqual(
      [r.status, r.text],
      [503, errorBody("TIDINGS_ERR_AUTH_UNAVAILABLE", "Tryton's session database cannot be reached: retry shortly.")],
    );
    // Again (no broken state left behind), then tokens still work on the same server.
    assert.equal((await pollAs(server, header, { last_message: null, channels: [] }, "erp")).status, 503);
    const health = await call(`${server.url}/healthz`, { method: "GET" });
    assert.deepEqual([health.status, health.text], [200, JSON.stringify({ status: "ok" })]);
    const published = await call(`${server.url}/erp/publish`, {
      token: await token("erp", { db: "erp", role: "publisher" }),
      body: { channel: "user:7", message: { type: "still-up" } },
    });
    assert.equal(published.status, 200, published.text);
    const read = await call(`${server.url}/erp/bus`, { token: await token("7", { db: "erp" }), body: { last_message: null, channels: ["user:7"] } });
    const id = (published.json as { message_id: string }).message_id;
    assert.equal(read.text, oneMessage("user:7", id, { type: "still-up" }));
  });
});

describe("trytonSessions configuration", () => {
  const fails = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof TidingsError && e.code === "TIDINGS_ERR_CONFIG" && re.test(e.message));

  it("is off by default and takes its keys from flags, TIDINGS_* and defaults", () => {
    assert.equal(resolveOptions({}).trytonSessions, undefined);
    const o = resolveOptions(
      loadOptionsInput({
        flags: { trytonSessionsCacheSeconds: "5" },
        env: { TIDINGS_TRYTON_SESSIONS_URL: "postgres://tryton@db-host:5432/", TIDINGS_TRYTON_SESSIONS_CACHE_SECONDS: "9" },
      }),
    );
    assert.deepEqual(o.trytonSessions, { url: "postgres://tryton@db-host:5432/", maxAgeSeconds: 2_592_000, timeoutSeconds: 604_800, cacheSeconds: 5 });
  });

  it("refuses settings without a url, a url naming a database, and non-positive limits", () => {
    fails(() => resolveOptions(loadOptionsInput({ env: { TIDINGS_TRYTON_SESSIONS_TIMEOUT_SECONDS: "60" } })), /trytonSessions\.url is required/);
    fails(() => resolveOptions({ trytonSessions: { url: "postgres://tryton@db-host/tryton" } }), /must not name a database/);
    fails(() => resolveOptions({ trytonSessions: { url: "http://db-host/" } }), /must be a PostgreSQL URL/);
    fails(() => resolveOptions({ trytonSessions: { url: "postgres://db-host/", timeoutSeconds: 0 } }), /timeoutSeconds must be a positive number/);
  });
});
