import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Browser, Page } from "playwright-core";
import { chromiumSkip, launchChromium } from "../helpers/browser.js";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";


interface BrowserEvent {
  type: string;
  id: string;
  data: any;
}

describe("SSE in headless Chromium's own EventSource", { skip: chromiumSkip }, () => {
  let browser: Browser;
  let server: TidingsServer;
  let page: Page;
  const streams: Array<{ req: IncomingMessage; res: ServerResponse }> = [];

  before(async () => {
    server = await startServer({ accessRules: [{ channels: "room-*" }, { channels: "chat:*" }], sseRetryMs: 50 });
    server.http.on("request", (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.includes("/events")) streams.push({ req, res });
    });
    browser = await launchChromium();
    page = await browser.newPage();
    // Same origin as the stream, as a page served next to the bus would be.
    await page.goto(`${server.url}/healthz`);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  const events = (): Promise<BrowserEvent[]> => page.evaluate(() => (window as unknown as { received: BrowserEvent[] }).received);
  const waitForEvents = (n: number) =>
    page.waitForFunction((count) => (window as unknown as { received: unknown[] }).received.length >= count, n, { timeout: 10_000 });

  test("events carry the message id, and a dropped stream resumes by Last-Event-ID", async () => {
    const t = await token("7");
    await page.evaluate(
      ({ url }) => {
        const w = window as unknown as { received: BrowserEvent[]; source: EventSource };
        w.received = [];
        w.source = new EventSource(url);
        for (const type of ["message", "gap"]) {
          w.source.addEventListener(type, (e) => {
            const m = e as MessageEvent<string>;
            w.received.push({ type, id: m.lastEventId, data: JSON.parse(m.data) });
          });
        }
      },
      { url: `/test/events?token=${t}&channels=room-1&channel=${encodeURIComponent("chat:sale.sale,12")}` },
    );
    await page.waitForFunction(() => (window as unknown as { source: EventSource }).source.readyState === 1);
    const published: string[] = [];
    published.push(await server.bus.publish("test", "room-1", { type: "invoice", number: 1 }));
    published.push(await server.bus.publish("test", "chat:sale.sale,12", { type: "chat", text: "hello" }));
    await waitForEvents(2);
    assert.deepEqual(await events(), [
      { type: "message", id: published[0], data: { channel: "room-1", message: { message_id: published[0], type: "invoice", number: 1 } } },
      { type: "message", id: published[1], data: { channel: "chat:sale.sale,12", message: { message_id: published[1], type: "chat", text: "hello" } } },
    ]);

    // The network drops the stream; messages keep coming while the browser is away.
    streams[0]!.res.destroy();
    for (let i = 0; i < 3; i++) published.push(await server.bus.publish("test", "room-1", { type: "t", i }));
    await waitForEvents(5);
    published.push(await server.bus.publish("test", "room-1", { type: "live" }));
    await waitForEvents(6);

    assert.equal(streams.length, 2);
    assert.equal(streams[1]!.req.headers["last-event-id"], published[1]);
    assert.deepEqual(
      (await events()).map((e) => e.id),
      published,
    );
    await page.evaluate(() => (window as unknown as { source: EventSource }).source.close());
  });
});
