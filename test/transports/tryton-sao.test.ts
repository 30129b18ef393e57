/**
 * Tryton's own web client code against tidings: the real `src/bus.js` of tryton-sao (from
 * node_modules, never copied) with the real jQuery it depends on, in headless Chromium,
 * polling a tidings server on another origin (CORS with credentials). Its handlers must get
 * every published message once and in order, across a restart of the server on the same
 * SQLite file while it is polling.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/browser.js";
import { createServer, type TidingsServer } from "../../src/server.js";
import { StaticSessionVerifier } from "../../src/auth/tryton-session.js";
import { TEST_SECRET } from "../helpers/server.js";
import { parked, postOnce, publisher } from "./longpoll-client.js";

const require = createRequire(import.meta.url);
const SAO_BUS = require.resolve("tryton-sao/src/bus.js");
// jQuery as sao itself resolves it (a dependency of tryton-sao).
const JQUERY = createRequire(require.resolve("tryton-sao/package.json")).resolve("jquery");

const SESSION = { database: "test", login: "admin", userId: "1", key: "sao-session-key" };

/**
 * The page: jQuery, the smallest `Sao` namespace bus.js needs (the real one comes from
 * sao.js, which needs the whole web client), then the real bus.js.
 *
 * Credentials: sao up to 7.8 sent `Authorization: Session base64(login:user_id:key)` from
 * bus.js itself; sao 8.0 (installed here) keeps the session in a cookie of its own origin
 * and sends no header, so a deployment with the bus on another origin sets the same header
 * (and credentials) once for jQuery, as below.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>sao bus</title>
<script src="/jquery.js"></script>
<script>
  window.busErrors = [];
  window.Sao = {
    common: {
      // Sao.common.uuid4, as in sao's common.js.
      uuid4: function() {
        return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function(c) {
          var r = Math.random() * 16 | 0;
          return (c == 'x' ? r : (r & 0x3 | 0x8)).toString(16);
        });
      },
    },
    config: { bus_timeout: 5000 },
    Logger: {
      debug: function() {}, info: function() {}, warn: function() {},
      error: function() { window.busErrors.push(Array.prototype.join.call(arguments, ' ')); },
    },
    Session: { current_session: null },
  };
</script>
<script src="/bus.js"></script>
<script>
  window.startBus = function(cfg) {
    jQuery.ajaxSetup({
      headers: { Authorization: 'Session ' + btoa(cfg.login + ':' + cfg.userId + ':' + cfg.key) },
      xhrFields: { withCredentials: true },
    });
    Sao.Session.current_session = { database: cfg.database, bus_url_host: cfg.busUrl };
    cfg.channels.concat(['client:' + Sao.Bus.id]).forEach(function(channel) {
      Sao.Bus.register(channel, function(message) { window.onBusMessage(channel, message); });
    });
    Sao.Bus.listen();
    return Sao.Bus.id;
  };
</script>`;

interface Received {
  readonly channel: string;
  readonly message: Record<string, unknown>;
}

describe("tryton-sao's bus.js in Chromium", { skip: chromiumSkip }, () => {
  const dir = mkdtempSync(join(tmpdir(), `tidings-sao-${process.pid}-`));
  const store = `sqlite:${join(dir, "bus.db")}`;
  let pages: Server;
  let pageOrigin: string;
  let browser: Browser;
  let page: Page;
  let tidings: TidingsServer | null = null;

  /** A tidings server for the page's origin, on `port` (0: any), on the test's SQLite file. */
  async function startTidings(port: number): Promise<TidingsServer> {
    const server = await createServer({
      store,
      secret: TEST_SECRET,
      logLevel: "silent",
      databases: [SESSION.database],
      corsOrigins: [pageOrigin],
      accessRules: [{ channels: "chat:*" }],
      // Shorter than sao's own request timeout, as in production (5 min vs 10 min).
      pollTimeoutMs: 1_000,
      sessionVerifier: new StaticSessionVerifier([{ db: SESSION.database, login: SESSION.login, userId: SESSION.userId, key: SESSION.key }]),
    });
    await server.listen(port, "127.0.0.1");
    return server;
  }

  before(async () => {
    pages = createHttpServer((req, res) => {
      const files: Record<string, [string, string]> = {
        "/jquery.js": [JQUERY, "text/javascript"],
        "/bus.js": [SAO_BUS, "text/javascript"],
      };
      const file = files[req.url ?? ""];
      if (file) {
        res.writeHead(200, { "content-type": file[1] });
        res.end(readFileSync(file[0]));
      } else if (req.url === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        res.end(PAGE);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((ok) => pages.listen(0, "127.0.0.1", ok));
    pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await tidings?.close();
    await new Promise<void>((ok) => pages.close(() => ok()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers published messages to sao's handlers in order, across a server restart on SQLite", async () => {
    tidings = await startTidings(0);
    const port = (tidings.http.address() as AddressInfo).port;

    const received: Received[] = [];
    let want = 0;
    let reached: (() => void) | null = null;
    await page.exposeFunction("onBusMessage", (channel: string, message: Record<string, unknown>) => {
      received.push({ channel, message });
      if (received.length >= want) reached?.();
    });
    const until = (n: number): Promise<void> => {
      want = n;
      return received.length >= n ? Promise.resolve() : new Promise((ok) => (reached = ok));
    };

    await page.goto(`${pageOrigin}/`);
    const busId = await page.evaluate(
      (cfg) => (window as unknown as { startBus(c: typeof cfg): string }).startBus(cfg),
      { ...SESSION, busUrl: tidings.url, channels: ["chat:sale.sale,12", `notification:${SESSION.userId}`, `user:${SESSION.userId}`] },
    );
    assert.match(busId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await parked(tidings, 1);

    const expected: Received[] = [];
    // Each publish on a connection of its own: the restart reuses the port.
    async function send(server: TidingsServer, channel: string, message: Record<string, unknown>): Promise<void> {
      const r = await postOnce(`${server.url}/test/publish`, { channel, message }, await publisher());
      assert.equal(r.status, 200, r.text);
      const id = (r.json as { message_id: string }).message_id;
      expected.push({ channel, message: { message_id: id, ...message } });
    }
    async function notify(server: TidingsServer): Promise<void> {
      const n = { title: "Sale confirmed", body: "SO/12", priority: 2 };
      const r = await postOnce(`${server.url}/test/notify`, { ...n, client: busId }, await publisher());
      assert.equal(r.status, 200, r.text);
      const id = (r.json as { message_id: string }).message_id;
      expected.push({ channel: `client:${busId}`, message: { message_id: id, type: "notification", kind: "notification", ...n } });
    }

    // While sao polls: a burst on all its channels, faster than it re-polls.
    await send(tidings, "chat:sale.sale,12", { type: "chat", text: "first" });
    await send(tidings, `notification:${SESSION.userId}`, { type: "notification-count", count: 3 });
    await notify(tidings);
    await send(tidings, `user:${SESSION.userId}`, { type: "user-thing", when: { __class__: "datetime", year: 2026, month: 1, day: 2, hour: 3, minute: 4, second: 5, microsecond: 6 } });
    await send(tidings, "chat:sale.sale,12", { type: "chat", text: "second" });
    await send(tidings, "chat:other,1", { type: "chat", text: "not subscribed" }).then(() => expected.pop());
    await until(5);
    assert.deepEqual(received, expected);

    // One more, then the server goes away at once while sao is polling.
    await send(tidings, "chat:sale.sale,12", { type: "chat", text: "just before the restart" });
    await tidings.close();
    tidings = null;

    // Same file, same port: sao retries on its own and resumes from its last message.
    tidings = await startTidings(port);
    await send(tidings, "chat:sale.sale,12", { type: "chat", text: "while sao was away" });
    await send(tidings, `notification:${SESSION.userId}`, { type: "notification-count", count: 4 });
    await until(8);
    await parked(tidings, 1);
    await send(tidings, "chat:sale.sale,12", { type: "chat", text: "live again" });
    await notify(tidings);
    await until(10);

    assert.deepEqual(received, expected, "every message once, in publish order");
    // sao saw the server go away (its own error-and-retry path), not a seamless hand-over.
    const errors = await page.evaluate(() => (window as unknown as { busErrors: string[] }).busErrors);
    assert.ok(errors.some((e) => e.startsWith("An exception occured while connection to the bus")), JSON.stringify(errors));
    const ids = received.map((r) => r.message.message_id as string);
    assert.deepEqual([...ids].sort(), ids, "message ids keep their order across the restart (same epoch)");
  });
});
