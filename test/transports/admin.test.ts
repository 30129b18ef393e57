/**
 * The admin page (DESIGN §8): `GET /admin/api/stats` on the raw wire — its exact shape,
 * who may read it, and its numbers moving with publishes, parked polls and streams — and
 * `GET /admin` in headless Chromium, where user-chosen channel names must stay text.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { get, type ClientRequest, type IncomingMessage } from "node:http";
import { SignJWT } from "jose";
import type { Browser } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/browser.js";
import type { TidingsServer } from "../../src/server.js";
import { RateMeter } from "../../src/core/rates.js";
import { topChannels, type AdminStats, type RateView } from "../../src/admin/stats.js";
import { startServer, TEST_SECRET, token } from "../helpers/server.js";
import { readFileSync } from "node:fs";
import { runCli } from "../cli/cli-process.js";
import { call, errorBody, parked, poll, publish, waitFor, type Reply } from "./longpoll-client.js";


/** A channel name a user chose to attack the page with. */
const HOSTILE = 'room-<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

function stats(server: TidingsServer, init: { token?: string; headers?: Record<string, string>; query?: string } = {}): Promise<Reply> {
  return call(`${server.url}/admin/api/stats${init.query ?? ""}`, {
    method: "GET",
    ...(init.token !== undefined ? { token: init.token } : {}),
    ...(init.headers ? { headers: init.headers } : {}),
  });
}

/** Rates with the per-second series summed: which second a message fell in is the clock's business. */
function rates(v: RateView): { last_1m: number; last_5m: number; per_second_sum: number } {
  assert.equal(v.per_second.length, 60);
  return { last_1m: v.last_1m, last_5m: v.last_5m, per_second_sum: v.per_second.reduce((a, b) => a + b, 0) };
}

/** The answer with what varies run to run checked for its type, then left out. */
function stable(reply: Reply) {
  assert.equal(reply.status, 200, reply.text);
  const body = reply.json as AdminStats;
  assert.deepEqual(Object.keys(body), ["server", "connections", "parked_polls", "messages", "databases"]);
  const { uptime_seconds, rss_bytes, time, ...server } = body.server;
  assert.ok(Number.isInteger(uptime_seconds) && uptime_seconds >= 0);
  assert.ok(Number.isInteger(rss_bytes) && rss_bytes > 0);
  assert.ok(!Number.isNaN(Date.parse(time)));
  // This very request holds an HTTP connection; fetch may keep earlier ones open.
  const { http, ...connections } = body.connections;
  assert.ok(http !== undefined && http >= 1);
  return {
    server,
    connections,
    parked_polls: body.parked_polls,
    messages: rates(body.messages),
    databases: body.databases.map((d) => ({ ...d, messages: rates(d.messages) })),
  };
}

const noRates = { last_1m: 0, last_5m: 0, per_second_sum: 0 };
const noCommands = { open: { pending: 0, delivered: 0, running: 0 }, open_capped: false, recent: [] };

describe("GET /admin/api/stats", () => {
  let server: TidingsServer;
  let admin: string;
  let adminAll: string;

  before(async () => {
    server = await startServer({ databases: ["test", "other"], accessRules: [{ channels: "room-*" }], pollTimeoutMs: 30_000 });
    admin = await token("root", { role: "admin" });
    adminAll = await token("root", { role: "admin", db: "*" });
  });
  after(() => server.close());

  it("refuses callers without the admin role of the database", async () => {
    assert.equal((await stats(server)).text, errorBody("TIDINGS_ERR_AUTH_REQUIRED", "Authentication required."));
    assert.equal((await stats(server)).status, 401);
    for (const role of ["subscriber", "publisher"] as const) {
      const r = await stats(server, { token: await token("7", { role }) });
      assert.equal(r.status, 403);
      assert.equal(r.text, errorBody("TIDINGS_ERR_ROLE_FORBIDDEN", "The admin page needs the admin role."));
    }
    // A subscriber token valid for every database is still not an admin.
    const anyDb = await stats(server, { token: await token("7", { db: "*" }) });
    assert.equal(anyDb.text, errorBody("TIDINGS_ERR_ROLE_FORBIDDEN", "The admin page needs the admin role."));

    const otherAdmin = await token("root", { role: "admin", db: "other" });
    const wrongDb = await stats(server, { token: otherAdmin, query: "?db=test" });
    assert.equal(wrongDb.status, 403);
    assert.equal(wrongDb.text, errorBody("TIDINGS_ERR_AUTH_WRONG_DB", 'These credentials are for database "other".'));
    // Without ?db it sees its own database, and only that one.
    await server.bus.publish("test", "room-1", { type: "t" });
    const own = stable(await stats(server, { token: otherAdmin }));
    assert.deepEqual(own.databases.map((d) => d.name), ["other"]);

    const forged = await new SignJWT({ db: "*", role: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("root")
      .setIssuer("tidings")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-another-secret-0123456789"));
    assert.equal((await stats(server, { token: forged })).text, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
    assert.equal((await stats(server, { token: "not-a-jwt" })).text, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
    const session = await stats(server, { headers: { authorization: "Session YWRtaW46MTprZXk=" } });
    assert.equal(session.status, 401);
    assert.equal(session.text, errorBody("TIDINGS_ERR_AUTH_INVALID", "The admin API accepts Bearer tokens or the session cookie."));

    // An admin of "*" sees every database served; the session cookie works as the header does.
    const all = await stats(server, { headers: { cookie: `tidings_session=${encodeURIComponent(adminAll)}` } });
    assert.deepEqual(stable(all).databases.map((d) => d.name), ["other", "test"]);
    assert.equal(all.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(all.headers.get("x-content-type-options"), "nosniff");
    assert.equal(all.headers.get("cache-control"), "no-store");
  });

  it("lets in the token made by the command the login form shows, as printed", async () => {
    const page = readFileSync(new URL("../../web/admin.html", import.meta.url), "utf8");
    const hint = /<span class="mono" id="token-hint">([^<]+)<\/span>/.exec(page)?.[1];
    assert.ok(hint !== undefined, "the login form shows a command");
    const words = [...hint.replaceAll("&#39;", "'").matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
    assert.deepEqual(words.slice(0, 2), ["tidings", "token"]);
    const made = await runCli([...words.slice(1), "--secret", TEST_SECRET]);
    assert.equal(made.code, 0, made.stderr);
    const reply = await stats(server, { token: made.stdout.trim() });
    assert.deepEqual(stable(reply).databases.map((d) => d.name), ["other", "test"]);
  });

  it("counts messages, listeners by channel and commands as they happen", async () => {
    const fresh = await startServer({ accessRules: [{ channels: "room-*" }], pollTimeoutMs: 30_000 });
    let sse: ClientRequest | undefined;
    try {
      assert.deepEqual(stable(await stats(fresh, { token: admin })), {
        server: { engine: "memory" },
        connections: { websocket: 0, sse: 0 },
        parked_polls: 0,
        messages: noRates,
        databases: [
          { name: "test", head: null, tail_messages: 0, listeners: 0, channel_count: 0, channels: [], messages: noRates, commands: noCommands },
        ],
      });

      // Commands publish their wake-ups on the log too: 1 for the first, 3 for the cancelled one.
      const first = await fresh.bus.commands.send("test", "bot:1", "reindex", [1]);
      const second = await fresh.bus.commands.send("test", "bot:2", "ping");
      const cancelled = await fresh.bus.commands.cancel("test", second.command.id);
      await publish(fresh, "room-1", { type: "a" });
      const head = await publish(fresh, "room-1", { type: "b" });

      const subscriber = await token("7");
      const parkedPoll = poll(fresh, subscriber, { last_message: head, channels: [HOSTILE] });
      await parked(fresh, 1);
      // node:http rather than fetch: an aborted fetch leaves its socket open for seconds.
      sse = get(`${fresh.url}/test/events?channels=room-1&token=${subscriber}`, { agent: false });
      const events = await new Promise<IncomingMessage>((resolve) => sse!.once("response", resolve));
      assert.equal(events.statusCode, 200);
      await parked(fresh, 2);

      const six = { last_1m: 6, last_5m: 6, per_second_sum: 6 };
      assert.deepEqual(stable(await stats(fresh, { token: admin })), {
        server: { engine: "memory" },
        connections: { websocket: 0, sse: 1 },
        parked_polls: 1,
        messages: six,
        databases: [
          {
            name: "test",
            head,
            tail_messages: 6,
            listeners: 2,
            channel_count: 3,
            // Most listeners first, then by name; the poll also listens on its user channel.
            channels: [
              { channel: "room-1", listeners: 1 },
              { channel: HOSTILE, listeners: 1 },
              { channel: "user:7", listeners: 1 },
            ],
            messages: six,
            commands: {
              open: { pending: 1, delivered: 0, running: 0 },
              open_capped: false,
              recent: [
                {
                  id: second.command.id,
                  address: "bot:2",
                  method: "ping",
                  state: "cancelled",
                  attempts: 0,
                  created_at: new Date(second.command.createdAt).toISOString(),
                  finished_at: new Date(cancelled.finishedAt!).toISOString(),
                },
                {
                  id: first.command.id,
                  address: "bot:1",
                  method: "reindex",
                  state: "pending",
                  attempts: 0,
                  created_at: new Date(first.command.createdAt).toISOString(),
                  finished_at: null,
                },
              ],
            },
          },
        ],
      });

      // The parked poll is answered and leaves; the stream stays on room-1.
      const id = await publish(fresh, HOSTILE, { type: "c" });
      assert.equal((await parkedPoll).status, 200);
      await parked(fresh, 1);
      const after = stable(await stats(fresh, { token: admin }));
      assert.equal(after.parked_polls, 0);
      assert.deepEqual(after.databases[0]!.channels, [{ channel: "room-1", listeners: 1 }]);
      assert.equal(after.databases[0]!.head, id);
      assert.deepEqual(after.messages, { last_1m: 7, last_5m: 7, per_second_sum: 7 });

      sse.destroy();
      // The stream's cleanup removes its listener and its connection together.
      await waitFor(() => fresh.bus.log("test").listenerCount === 0, "the stream to close");
      assert.deepEqual(stable(await stats(fresh, { token: admin })).connections, { websocket: 0, sse: 0 });
    } finally {
      sse?.destroy();
      await fresh.close();
    }
  });
});

describe("what the stats are made of", () => {
  it("counts per second over a ring that forgets what is older than its window", () => {
    const meter = new RateMeter(300);
    const t = 1_700_000_000_000;
    meter.record("test", 2, t);
    meter.record("test", 3, t + 400);
    meter.record("test", 1, t + 1000);
    meter.record("other", 5, t + 1000);
    assert.deepEqual(meter.series("test", 3, t + 1500), [0, 5, 1]);
    assert.equal(meter.count("test", 60, t + 1500), 6);
    // 60 s later the first second left the last minute, not the last five.
    assert.equal(meter.count("test", 60, t + 60_000), 1);
    assert.equal(meter.count("test", 300, t + 60_000), 6);
    // A whole window later the ring's slots are reused, and stale ones read as zero.
    meter.record("test", 7, t + 300_000);
    assert.equal(meter.count("test", 300, t + 300_500), 8);
    assert.deepEqual(meter.series("test", 2, t + 301_000), [7, 0]);
    assert.equal(meter.count("test", 300, t + 900_000), 0);
    assert.equal(meter.count("other", 300, t + 1000), 5);
    assert.equal(meter.count("nobody", 300, t), 0);
  });

  it("keeps the channels with the most listeners, ties by name", () => {
    const entries: Array<[string, number]> = [];
    for (let i = 0; i < 120; i++) entries.push([`client:${String(i).padStart(3, "0")}`, 1]);
    entries.push(["invoice-42", 5], ["b", 2], ["a", 2]);
    const { top, total } = topChannels(entries, 50);
    assert.equal(total, 123);
    assert.equal(top.length, 50);
    assert.deepEqual(top.slice(0, 5), [["invoice-42", 5], ["a", 2], ["b", 2], ["client:000", 1], ["client:001", 1]]);
    assert.deepEqual(top[49], ["client:046", 1]);
  });
});

describe("GET /admin in headless Chromium", { skip: chromiumSkip }, () => {
  let server: TidingsServer;
  let browser: Browser;

  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("asks for a token, then shows the database with hostile channel names as text", async () => {
    const res = await fetch(`${server.url}/admin`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(res.headers.get("content-security-policy")!, /^default-src 'self'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    await res.text();

    const streams = [
      server.bus.stream("test", [HOSTILE, "room-1"], null, { onMessages() {} }),
      server.bus.stream("test", ["room-1"], null, { onMessages() {} }),
    ];
    await waitFor(() => server.bus.log("test").listenerCount === 2, "two streams");
    for (let i = 0; i < 5; i++) await server.bus.publish("test", "room-1", { type: "t", i });
    await server.bus.commands.send("test", "bot:1", "reindex", [1]);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("console", (m) => {
      // The page's first probe, without a token, is refused by design.
      if ((m.type() === "error" || m.type() === "warning") && !m.text().includes("401")) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    try {
      await page.goto(`${server.url}/admin`);
      await page.locator("#token").waitFor({ state: "visible" });
      await page.fill("#token", await token("root", { role: "admin" }));
      await page.click("button[type=submit]");

      const dbCell = page.locator("#databases tbody tr td").first();
      await dbCell.waitFor();
      assert.equal(await dbCell.textContent(), "test");
      const channels = await page.locator(".db table").first().locator("tbody tr td.mono").allTextContents();
      assert.deepEqual(channels, ["room-1", HOSTILE]);
      assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
      assert.equal(await page.locator(".db script, .db img").count(), 0);
      assert.equal(await page.locator(".state-pending").textContent(), "pending");
      assert.equal(await page.locator("svg.spark polyline").count(), 1);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("tidings-admin-token") !== null), true);
      await page.screenshot({ path: "/tmp/admin.png", fullPage: true });
      // A CSP refusal shows as a console error: the hashes must cover the inline script and style.
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      for (const s of streams) s.close();
    }
  });

  it("uses the session cookie when it holds an admin token, and asks again for a wrong one", async () => {
    const context = await browser.newContext();
    try {
      await context.addCookies([{ name: "tidings_session", value: await token("root", { role: "admin", db: "*" }), url: server.url }]);
      const page = await context.newPage();
      await page.goto(`${server.url}/admin`);
      await page.locator("#databases tbody tr td").first().waitFor();
      assert.equal(await page.locator("#login").isHidden(), true);

      await context.clearCookies();
      await page.evaluate((t) => sessionStorage.setItem("tidings-admin-token", t), await token("7"));
      await page.reload();
      await page.locator("#login-error").waitFor({ state: "visible" });
      assert.equal(await page.locator("#login-error").textContent(), "The admin page needs the admin role.");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("tidings-admin-token")), null);
    } finally {
      await context.close();
    }
  });
});
