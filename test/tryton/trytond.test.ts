/**
 * tidings as the bus of a real trytond (Debian's tryton-server): users log in through
 * trytond's JSON-RPC, trytond code publishes with `trytond.bus.notify` in Tryton
 * transactions (trytond's own interpreter), and clients poll tidings with their Tryton
 * session, one message per answer, exactly as Tryton clients do. Then the adapter
 * (integrations/tryton/tidings_tryton.py): across a tidings restart, with a rollback, and
 * with a message larger than any NOTIFY.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import { createServer, type TidingsServer } from "../../src/server.js";
import { TEST_SECRET } from "../helpers/server.js";
import { adminSql, dropDatabase, postgresReachable, SERVER_URL, sqlOn, uniqueName, until } from "./helpers.js";
import { cloneTemplate, createUser, login, ADMIN_PASSWORD, TrytondPublisher, TrytondServer, trytondSkip, type Session } from "./trytond.js";

const skip = trytondSkip || (process.env.CI === "true" || (await postgresReachable()) ? false : "PostgreSQL not reachable");

interface Got {
  readonly channel: string;
  readonly message: Record<string, unknown>;
}

/** A Tryton client of tidings: POST /<db>/bus with its Session header, re-polling from the last message_id. */
class TrytonClient {
  cursor: string | null = null;
  readonly got: Got[] = [];

  constructor(
    private readonly base: () => string,
    private readonly db: string,
    private readonly session: Session,
    private readonly channels: string[],
  ) {}

  /** One poll: at most one message (Tryton's wire); null when the poll timed out empty. */
  async pollOnce(): Promise<Got | null> {
    const res = await fetch(`${this.base()}/${this.db}/bus`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: this.session.header },
      body: JSON.stringify({ last_message: this.cursor, channels: this.channels }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { channel: string | null; message: Record<string, unknown> | null };
    assert.deepEqual(Object.keys(body).sort(), ["channel", "message"], "Tryton's answer shape, nothing else");
    if (body.message === null) return null;
    this.cursor = body.message["message_id"] as string;
    const got = { channel: body.channel!, message: body.message };
    this.got.push(got);
    return got;
  }

  /** Polls until `n` messages in all, failing at the deadline. */
  async until(n: number, ms = 15_000): Promise<Got[]> {
    const deadline = Date.now() + ms;
    while (this.got.length < n) {
      if (Date.now() > deadline) throw new Error(`got ${this.got.length} of ${n} messages: ${this.got.map((g) => `${g.channel} ${String(g.message["title"])}`).join(", ")}`);
      await this.pollOnce();
    }
    return this.got;
  }

  /** Nothing more is coming: one whole poll timeout passes empty. */
  async nothingMore(): Promise<void> {
    const extra = await this.pollOnce();
    assert.equal(extra, null, `unexpected ${JSON.stringify(extra)}`);
  }
}

/** The message without tidings' id (checked to be tidings' and not trytond's uuid). */
function payload(got: Got): Got {
  const { message_id: id, ...rest } = got.message;
  assert.doesNotMatch(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-4/, "tidings' own message_id replaces trytond's uuid4");
  return { channel: got.channel, message: rest };
}

function notification(channel: string, title: string, body: string | null = null, priority = 1): Got {
  return { channel, message: { type: "notification", title, body, priority } };
}

describe("tidings as the bus of a real trytond", { skip }, () => {
  const db = uniqueName("tidings_trytond");
  const dir = mkdtempSync(join(tmpdir(), "tidings-trytond-"));
  const store = `sqlite:${join(dir, "tidings.db")}`;
  let admin: postgres.Sql;
  let trytond: TrytondServer;
  let tidings: TidingsServer | null = null;
  let root: Session;
  let bob: Session;

  async function startTidings(): Promise<TidingsServer> {
    const server = await createServer({
      store,
      secret: TEST_SECRET,
      logLevel: "silent",
      databases: [db],
      pollTimeoutMs: 700,
      tryton: { url: SERVER_URL, pollIntervalMs: 200 },
    });
    await server.listen(0, "127.0.0.1");
    await until(() => server.tryton!.leads(db), "tidings to lead the Tryton database");
    return server;
  }

  before(async () => {
    admin = adminSql();
    await cloneTemplate(db);
    trytond = await TrytondServer.start(dir);
    root = await login(trytond.url, db, "admin", ADMIN_PASSWORD);
    bob = await createUser(trytond.url, db, root, "bob");
    tidings = await startTidings();
  });

  after(async () => {
    await tidings?.close();
    await trytond?.stop();
    await dropDatabase(admin, db);
    await admin.end({ timeout: 5 });
    rmSync(dir, { recursive: true, force: true });
  });

  it("trytond's notify() (plain NOTIFY) reaches the Tryton session's clients in order; notify(client=…) only that client", async () => {
    const base = () => tidings!.url;
    const tabA = new TrytonClient(base, db, root, ["client:tab-a"]);
    const tabB = new TrytonClient(base, db, root, ["client:tab-b"]);
    const bobs = new TrytonClient(base, db, bob, ["client:bob-1"]);
    // Each client polls once so that its client channel is bound to its user, then keeps
    // polling while trytond publishes, as Tryton clients do.
    await Promise.all([tabA.pollOnce(), tabB.pollOnce(), bobs.pollOnce()]);
    const readingA = tabA.until(31);
    const readingB = tabB.until(22);

    const publisher = await TrytondPublisher.start(dir, db);
    const forAdmin: Got[] = [];
    const forTabA: Got[] = [];
    try {
      for (let n = 0; n < 30; n++) {
        if (n % 3 === 2) {
          await publisher.run({ user: root.userId, actions: [{ notify: { title: `only A ${n}`, client: "tab-a" } }] });
          forTabA.push(notification("client:tab-a", `only A ${n}`));
        } else {
          await publisher.run({ user: root.userId, actions: [{ notify: { title: `all ${n}`, body: "caf\u00e9 \u{1F600}", priority: 2, user: root.userId } }] });
          forAdmin.push(notification(`user:${root.userId}`, `all ${n}`, "caf\u00e9 \u{1F600}", 2));
        }
      }
      // The client's own Tryton context (`client` of the request) addresses that client.
      await publisher.run({ user: root.userId, context: { client: "tab-b" }, actions: [{ notify: { title: "from B's request" } }] });
      // A type-hinted payload, as trytond encodes it.
      await publisher.run({
        user: root.userId,
        actions: [{ publish: { channel: `user:${root.userId}`, message: { type: "record", when: { __class__: "datetime", year: 2026, month: 12, day: 5, hour: 1, minute: 2, second: 3, microsecond: 4 }, total: { __class__: "Decimal", decimal: "12.50" } } } }],
      });
    } finally {
      await publisher.close();
    }
    const hinted: Got = {
      channel: `user:${root.userId}`,
      message: { type: "record", when: { __class__: "datetime", year: 2026, month: 12, day: 5, hour: 1, minute: 2, second: 3, microsecond: 4 }, total: { __class__: "Decimal", decimal: "12.50" } },
    };

    const interleaved = (mine: Got[]) => {
      // trytond's publish order: admin's and this tab's notifications, as published.
      const order: Got[] = [];
      let a = 0;
      let t = 0;
      for (let n = 0; n < 30; n++) order.push(n % 3 === 2 ? mine[t++]! : forAdmin[a++]!);
      return order;
    };
    assert.deepEqual((await readingA).map(payload), [...interleaved(forTabA), hinted]);
    assert.deepEqual((await readingB).map(payload), [...forAdmin, notification("client:tab-b", "from B's request"), hinted]);
    await Promise.all([tabA.nothingMore(), tabB.nothingMore(), bobs.nothingMore()]);
    assert.equal(bobs.got.length, 0, "bob gets nothing of admin's");
  });

  it("another user's client channel, or a forged session, is refused", async () => {
    const stolen = await fetch(`${tidings!.url}/${db}/bus`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: bob.header },
      body: JSON.stringify({ last_message: null, channels: ["client:tab-a"] }),
    });
    assert.equal(stolen.status, 403);
    const forged = await fetch(`${tidings!.url}/${db}/bus`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Session ${Buffer.from(`admin:${root.userId}:${"0".repeat(64)}`).toString("base64")}` },
      body: JSON.stringify({ last_message: null, channels: [] }),
    });
    assert.equal(forged.status, 401);
  });

  it("the desktop client's way: trytond with [bus] url_host redirects /<db>/bus (308) to tidings, which accepts the re-sent header", async () => {
    const redirecting = await TrytondServer.start(join(dir, "url-host"), { extra: `url_host = ${tidings!.url}` });
    try {
      const body = JSON.stringify({ last_message: null, channels: [`client:desk-1`] });
      const headers = { "content-type": "application/json", authorization: root.header };
      const first = await fetch(`${redirecting.url}/${db}/bus`, { method: "POST", redirect: "manual", headers, body });
      assert.equal(first.status, 308);
      const location = first.headers.get("location")!;
      assert.equal(location, `${tidings!.url}/${db}/bus`);
      // The desktop client re-sends the same request there, its header included.
      const again = await fetch(location, { method: "POST", headers, body });
      assert.equal(again.status, 200);
      // A client without a cursor gets what came in the last few seconds, else waits: either way Tryton's answer.
      assert.deepEqual(Object.keys((await again.json()) as object).sort(), ["channel", "message"]);
    } finally {
      await redirecting.stop();
    }
  });

  it("with the adapter: published while tidings is stopped arrives on restart, in order; rollbacks publish nothing; any size", async () => {
    const client = new TrytonClient(() => tidings!.url, db, bob, ["client:bob-2"]);
    await client.pollOnce();
    const publisher = await TrytondPublisher.start(dir, db, { adapter: true });
    const live = client.until(6);
    const want: Got[] = [];
    const big = "x".repeat(20_000);
    const tryton = sqlOn(db, 1);
    try {
      const send = async (title: string, opts: { rollback?: boolean; body?: string } = {}) => {
        await publisher.run({ user: bob.userId, rollback: opts.rollback ?? false, actions: [{ notify: { title, body: opts.body ?? null, user: bob.userId } }] });
        if (!opts.rollback) want.push(notification(`user:${bob.userId}`, title, opts.body ?? null));
      };
      for (let n = 0; n < 5; n++) await send(`live ${n}`);
      await send("rolled back", { rollback: true });
      await send("big", { body: big });
      assert.deepEqual((await live).map(payload), want);

      await tidings!.close();
      tidings = null;
      for (let n = 0; n < 10; n++) await send(`while stopped ${n}`);
      await send("rolled back while stopped", { rollback: true });
      assert.equal((await tryton`SELECT count(*)::int AS n FROM tidings_bus`)[0]!.n, 10, "kept in Tryton's database meanwhile");

      tidings = await startTidings();
      await send("after the restart");
      assert.deepEqual((await client.until(17)).map(payload), want);
      await client.nothingMore();
      await until(async () => (await tryton`SELECT count(*)::int AS n FROM tidings_bus`)[0]!.n === 0, "ingested rows deleted");
    } finally {
      await tryton.end({ timeout: 5 });
      await publisher.close();
    }
  });
});
