/**
 * Tryton's web client bus code, unmodified, polling tidings through the reverse proxy of
 * docs/tryton.md (here a small Node proxy, test/tryton/proxy.ts: `/<db>/bus` to tidings,
 * everything else to trytond), with sessions from a real login through that proxy and
 * notifications from trytond's own `notify()`:
 * - sao 6.0 as Debian ships it (tryton-sao, the series of Debian's trytond): its bus code
 *   taken at run time from /usr/share/tryton-sao/www/dist/tryton-sao.js. It posts to its
 *   own origin with `Authorization: Session …` and shows notifications with
 *   `new Notification(…)`, which the page records.
 * - sao 8.0.11 from npm (`tryton-sao/src/bus.js`), posting to `bus_url_host` (the proxy's
 *   origin, as trytond returns it from the login) with no header at all: sao 8 relies on
 *   trytond 8's session cookie. Debian has no trytond 8, so after logging in to trytond 6.0
 *   the test sets that cookie in the browser as trytond 8.0 sets it at login
 *   (trytond/protocols/wrappers.py: `tryton_session=login:user_id:key`, Path=/<db>,
 *   HttpOnly, SameSite=Strict, Secure).
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import type { Browser, Page } from "playwright-core";
import { createServer, type TidingsServer } from "../../src/server.js";
import { chromiumSkip, launchChromium } from "../helpers/browser.js";
import { TEST_SECRET } from "../helpers/server.js";
import { adminSql, dropDatabase, postgresReachable, SERVER_URL, uniqueName, until } from "./helpers.js";
import { startProxy, type Proxy } from "./proxy.js";
import { ADMIN_PASSWORD, cloneTemplate, TrytondPublisher, TrytondServer, trytondSkip } from "./trytond.js";

const require = createRequire(import.meta.url);
const SAO8_BUS = require.resolve("tryton-sao/src/bus.js");
const JQUERY = createRequire(require.resolve("tryton-sao/package.json")).resolve("jquery");
const SAO6_DIST = "/usr/share/tryton-sao/www/dist/tryton-sao.js";

const skip =
  trytondSkip || chromiumSkip || (process.env.CI === "true" || (await postgresReachable()) ? false : "PostgreSQL not reachable");

/** sao 6.0's bus module (one IIFE of its dist file), unmodified. */
function sao6Bus(): string {
  const dist = readFileSync(SAO6_DIST, "utf8");
  const at = dist.indexOf("    Sao.Bus = {};");
  if (at < 0) throw new Error(`no Sao.Bus in ${SAO6_DIST}`);
  const start = dist.lastIndexOf("(function() {", at);
  const end = dist.indexOf("}());", at) + "}());".length;
  return dist.slice(start, end);
}

const STUBS = `
  window.Sao = {
    common: { uuid4: function() {
      return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function(c) {
        var r = Math.random() * 16 | 0; return (c == 'x' ? r : (r & 0x3 | 0x8)).toString(16);
      });
    } },
    config: { bus_timeout: 5000 },
    Logger: { debug: function() {}, info: function() {}, warn: function() {}, error: function() {} },
    Session: { current_session: null },
  };
  // Notifications shown by the page are recorded instead.
  window.Notification = function(title, options) { window.onNote(title, (options && options.body) || ''); };
  window.Notification.permission = 'granted';
  /** Logs in through the proxy, to trytond's JSON-RPC, as sao does. */
  window.trytonLogin = async function(db, login, password) {
    const r = await fetch('/' + db + '/', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 1, method: 'common.db.login', params: [login, { password: password }, 'en'] }) });
    const result = (await r.json()).result;
    return { uid: result[0], key: result[1], auth: btoa(login + ':' + result[0] + ':' + result[1]) };
  };`;

const PAGES: Record<string, string> = {
  "/sao6/": `<!doctype html><meta charset="utf-8"><script src="/t/jquery.js"></script><script>${STUBS}</script>
<script src="/t/sao6-bus.js"></script>
<script>
  window.start = async function(db, login, password) {
    const s = await trytonLogin(db, login, password);
    Sao.Session.current_session = { database: db, get_auth: function() { return s.auth; } };
    Sao.Bus.listen();
    return Sao.Bus.id;
  };
</script>`,
  "/sao8/": `<!doctype html><meta charset="utf-8"><script src="/t/jquery.js"></script><script>${STUBS}</script>
<script src="/t/sao8-bus.js"></script>
<script>
  // The test sets trytond 8's cookie between the login and listen() (sao 8 has no session key).
  window.listen = function(db, uid) {
    Sao.Session.current_session = { database: db, bus_url_host: location.origin };
    // sao's own popup handler already listens on client:<id>; the user channel needs one.
    Sao.Bus.register('user:' + uid, function(message) {
      if (message.type == 'notification') new Notification(message.title, { body: message.body || '' });
    });
    Sao.Bus.listen();
    return Sao.Bus.id;
  };
</script>`,
};

describe("sao's bus code through the reverse proxy, fed by trytond", { skip }, () => {
  const db = uniqueName("tidings_sao");
  const dir = mkdtempSync(join(tmpdir(), "tidings-sao-"));
  let admin: postgres.Sql;
  let trytond: TrytondServer;
  let tidings: TidingsServer;
  let proxy: Proxy;
  let browser: Browser;
  /** Bus polls with trytond 8's cookie and no Authorization header (sao 8's). */
  let cookieOnlyPolls = 0;

  before(async () => {
    admin = adminSql();
    await cloneTemplate(db);
    trytond = await TrytondServer.start(dir);
    tidings = await createServer({
      store: `sqlite:${join(dir, "tidings.db")}`,
      secret: TEST_SECRET,
      logLevel: "silent",
      databases: [db],
      pollTimeoutMs: 1_000,
      tryton: { url: SERVER_URL, pollIntervalMs: 200 },
    });
    await tidings.listen(0, "127.0.0.1");
    await until(() => tidings.tryton!.leads(db), "tidings to lead the Tryton database");
    const files: Record<string, () => string> = {
      "/t/jquery.js": () => readFileSync(JQUERY, "utf8"),
      "/t/sao8-bus.js": () => readFileSync(SAO8_BUS, "utf8"),
      "/t/sao6-bus.js": sao6Bus,
    };
    proxy = await startProxy({ tidings: () => tidings.url, trytond: trytond.url }, (req, res) => {
      if (/\/bus\/?$/.test(req.url ?? "") && req.headers.authorization === undefined && /\btryton_session=/.test(req.headers.cookie ?? "")) cookieOnlyPolls++;
      const page = PAGES[req.url ?? ""];
      const file = files[req.url ?? ""];
      if (page === undefined && file === undefined) return false;
      res.writeHead(200, { "content-type": page !== undefined ? "text/html; charset=utf-8" : "text/javascript" });
      res.end(page ?? file!());
      return true;
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await tidings?.close();
    await trytond?.stop();
    await dropDatabase(admin, db);
    await admin.end({ timeout: 5 });
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(path: string, notes: string[]): Promise<{ page: Page; client: string }> {
    const page = await browser.newPage();
    await page.exposeFunction("onNote", (title: string, body: string) => notes.push(`${title}|${body}`));
    await page.goto(`${proxy.url}${path}`);
    if (path === "/sao6/") {
      const client = await page.evaluate(
        ([d, p]) => (window as unknown as { start(db: string, l: string, p: string): Promise<string> }).start(d, "admin", p),
        [db, ADMIN_PASSWORD] as const,
      );
      return { page, client };
    }
    const { uid, key } = await page.evaluate(
      ([d, p]) => (window as unknown as { trytonLogin(db: string, l: string, p: string): Promise<{ uid: number; key: string }> }).trytonLogin(d, "admin", p),
      [db, ADMIN_PASSWORD] as const,
    );
    await page.context().addCookies([
      { name: "tryton_session", value: `admin:${uid}:${key}`, domain: new URL(proxy.url).hostname, path: `/${db}`, httpOnly: true, secure: true, sameSite: "Strict" },
    ]);
    const client = await page.evaluate(([d, u]) => (window as unknown as { listen(db: string, uid: number): string }).listen(d, u), [db, uid] as const);
    return { page, client };
  }

  it("sao 6.0 (Debian) and sao 8.0.11 (npm) show every notification meant for them, in order, and no other client's", async (t) => {
    const sao6 = existsSync(SAO6_DIST);
    if (!sao6) t.diagnostic(`sao 6.0 not installed (${SAO6_DIST}; apt-get install tryton-sao): only sao 8.0.11 runs`);
    const notes6: string[] = [];
    const notes8: string[] = [];
    const clients: string[] = [];
    if (sao6) clients.push((await open("/sao6/", notes6)).client);
    clients.push((await open("/sao8/", notes8)).client);
    await until(() => tidings.bus.log(db).listenerCount === clients.length, "every page polling tidings");

    const publisher = await TrytondPublisher.start(dir, db);
    const want: string[][] = clients.map(() => []);
    try {
      for (let n = 0; n < 12; n++) {
        if (n % 3 === 0) {
          await publisher.run({ user: 1, actions: [{ notify: { title: `everyone ${n}`, body: "caf\u00e9", user: 1 } }] });
          for (const w of want) w.push(`everyone ${n}|caf\u00e9`);
        } else {
          const i = n % clients.length;
          await publisher.run({ user: 1, actions: [{ notify: { title: `one ${n}`, client: clients[i]! } }] });
          want[i]!.push(`one ${n}|`);
        }
      }
    } finally {
      await publisher.close();
    }
    const got = sao6 ? [notes6, notes8] : [notes8];
    await until(() => got.every((g, i) => g.length >= want[i]!.length), "every page's notifications", 15_000);
    // One more poll round: nothing else arrives.
    await new Promise((r) => setTimeout(r, 1_200));
    assert.deepEqual(got, want);
    assert.ok(cookieOnlyPolls >= want.at(-1)!.length, `sao 8 polled with the cookie alone (${cookieOnlyPolls} polls)`);
  });
});
