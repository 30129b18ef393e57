/**
 * The SDK in headless Chromium, loaded from the server's own `GET /client.js`: subscribe, a
 * server restart on SQLite, fallback to SSE and to long-polling when WebSocket is blocked,
 * commands answered from the page, and the demo page end to end.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/browser.js";
import { createServer, type TidingsServer } from "../../src/server.js";
import { TEST_SECRET, request, token } from "../helpers/server.js";
import { tempDir } from "../commands/helpers.js";

const tmp = tempDir("client-browser");
const STORE = `sqlite:${join(tmp.dir, "browser.db")}`;

async function serve(port = 0): Promise<TidingsServer> {
  const server = await createServer({
    secret: TEST_SECRET,
    logLevel: "silent",
    databases: ["test"],
    store: STORE,
    accessRules: [{ channels: "room-*" }],
  });
  await server.listen(port, "127.0.0.1");
  return server;
}

type Win = Window & {
  sdk: typeof import("../../src/client/index.js");
  client: import("../../src/client/index.js").TidingsClient;
  got: Array<{ channel: string; id: string; n: unknown }>;
  events: string[];
};

describe("the SDK in headless Chromium, from /client.js", { skip: chromiumSkip }, () => {
  let browser: Browser;
  let server: TidingsServer;
  let port: number;

  before(async () => {
    server = await serve();
    port = Number(new URL(server.url).port);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    tmp.remove();
  });

  /** A page on the server's origin with the SDK imported and a client subscribed to `channel`. */
  async function pageWithClient(channel: string, options: Record<string, unknown> = {}, prepare?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await browser.newPage();
    await prepare?.(page);
    await page.goto(`${server.url}/healthz`);
    const t = await token("7");
    await page.evaluate(
      async ({ t, channel, options }) => {
        const w = window as unknown as Win;
        w.sdk = (await import("/client.js" as string)) as Win["sdk"];
        w.got = [];
        w.events = [];
        w.client = w.sdk.createClient({ url: location.origin, db: "test", token: t, backoff: { baseMs: 50, maxMs: 300 }, ...options });
        for (const e of ["connected", "disconnected", "reconnecting", "gap"] as const) w.client.on(e, () => w.events.push(e));
        await w.client.subscribe(channel, (m, c) => w.got.push({ channel: c, id: m.message_id, n: m.n })).ready;
      },
      { t, channel, options },
    );
    return page;
  }

  const got = (page: Page) => page.evaluate(() => (window as unknown as Win).got);
  const waitForCount = (page: Page, n: number) =>
    page.waitForFunction((count) => (window as unknown as Win).got.length >= count, n, { timeout: 15_000 });
  const transportOf = (page: Page) => page.evaluate(() => (window as unknown as Win).client.transport);

  it("subscribes over WebSocket and receives in log order", async () => {
    const page = await pageWithClient("room-1");
    try {
      assert.equal(await transportOf(page), "websocket");
      const ids: string[] = [];
      for (let n = 0; n < 5; n++) ids.push(await server.bus.publish("test", "room-1", { type: "n", n }));
      await waitForCount(page, 5);
      assert.deepEqual(await got(page), ids.map((id, n) => ({ channel: "room-1", id, n })));
    } finally {
      await page.evaluate(() => (window as unknown as Win).client.close());
      await page.close();
    }
  });

  it("resumes after a server restart without loss or duplicate", async () => {
    const page = await pageWithClient("room-2");
    try {
      const ids: string[] = [];
      for (let n = 0; n < 3; n++) ids.push(await server.bus.publish("test", "room-2", { type: "n", n }));
      await waitForCount(page, 3);
      await server.close();
      server = await serve(port);
      for (let n = 3; n < 6; n++) ids.push(await server.bus.publish("test", "room-2", { type: "n", n }));
      await page.waitForFunction(() => (window as unknown as Win).client.connected, null, { timeout: 15_000 });
      for (let n = 6; n < 8; n++) ids.push(await server.bus.publish("test", "room-2", { type: "n", n }));
      await waitForCount(page, 8);
      assert.deepEqual((await got(page)).map((m) => m.id), ids);
      const events = await page.evaluate(() => (window as unknown as Win).events);
      assert.ok(events.includes("disconnected") && events.includes("reconnecting"), events.join());
      // The server was down, not WebSocket refused: the client came back on WebSocket.
      assert.equal(await transportOf(page), "websocket");
    } finally {
      await page.evaluate(() => (window as unknown as Win).client.close());
      await page.close();
    }
  });

  it("falls back to SSE when WebSocket is blocked, and to long-polling when SSE is too", async () => {
    const blockWs = async (page: Page): Promise<void> => {
      await page.routeWebSocket(/\/ws$/, (ws) => ws.close({ code: 1008, reason: "blocked by the test" }));
    };
    const sse = await pageWithClient("room-3", {}, blockWs);
    const poll = await pageWithClient("room-3", {}, async (page) => {
      await blockWs(page);
      await page.route(/\/events\?/, (route) => route.abort());
    });
    try {
      assert.equal(await transportOf(sse), "sse");
      assert.equal(await transportOf(poll), "longpoll");
      const ids = [await server.bus.publish("test", "room-3", { type: "n", n: 0 }), await server.bus.publish("test", "room-3", { type: "n", n: 1 })];
      await Promise.all([waitForCount(sse, 2), waitForCount(poll, 2)]);
      assert.deepEqual((await got(sse)).map((m) => m.id), ids);
      assert.deepEqual((await got(poll)).map((m) => m.id), ids);
    } finally {
      for (const page of [sse, poll]) {
        await page.evaluate(() => (window as unknown as Win).client.close());
        await page.close();
      }
    }
  });

  it("answers commands from the page", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/healthz`);
      const bot = await token("page-user", { addresses: ["page:*"] });
      // Plain page script (a string): tsx would wrap a method written here in a helper the page lacks.
      await page.evaluate(`(async () => {
        const sdk = await import("/client.js");
        window.client = sdk.createClient({ url: location.origin, db: "test", token: ${JSON.stringify(bot)} });
        await window.client.expose("page:1", {
          greet(name) { return "hello " + name + " from " + (navigator.userAgent.includes("Chrome") ? "Chromium" : "?"); },
        });
      })()`);
      const publisher = await token("app", { role: "publisher" });
      const sent = await request(`${server.url}/test/commands`, { token: publisher, body: { address: "page:1", method: "greet", args: ["Ada"] } });
      assert.equal(sent.status, 201);
      const done = await request(`${server.url}/test/commands/${sent.body.id}?wait=10`, { method: "GET", token: publisher });
      assert.equal(done.body.state, "succeeded");
      assert.equal(done.body.result, "hello Ada from Chromium");
    } finally {
      await page.evaluate(() => (window as unknown as Win).client?.close());
      await page.close();
    }
  });

  it("the demo page shows the channel live, publishes, and pops up a notification sent over HTTP", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    try {
      await page.goto(`${server.url}/demo`);
      await page.fill("#db", "test");
      await page.fill("#token", await token("7", { role: "publisher", channels: ["demo*"] }));
      await page.click("#connect button[type=submit]");
      await page.waitForSelector("#status.up", { timeout: 10_000 });
      assert.match((await page.textContent("#status")) ?? "", /connected over websocket/);

      await server.bus.publish("test", "demo", { type: "order", text: "order 1042 confirmed" });
      await page.waitForSelector("#messages li:has-text('order 1042 confirmed')", { timeout: 10_000 });
      await page.fill("#text", "hello from the form");
      await page.click("#publish button[type=submit]");
      await page.waitForSelector("#messages li:has-text('hello from the form')", { timeout: 10_000 });

      const publisher = await token("app", { role: "publisher" });
      const res = await request(`${server.url}/test/notify`, { token: publisher, body: { title: "Invoice 42 posted", body: "Total 1,250.00 EUR", user: 7 } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const toast = await page.waitForSelector(".tidings-toast", { timeout: 10_000 });
      assert.match((await toast.textContent()) ?? "", /Invoice 42 posted\s*Total 1,250.00 EUR/);
      assert.deepEqual(await page.evaluate(() => document.querySelectorAll("#messages li").length), 2);
      if (process.env.TIDINGS_DEMO_SCREENSHOT) await page.screenshot({ path: process.env.TIDINGS_DEMO_SCREENSHOT });
    } finally {
      await page.close();
    }
  });
});
