/**
 * With `databases: "*"`, a database is loaded only for a caller whose credentials are valid
 * for it, on every transport, and at most `maxDatabases` are created on demand: requests
 * without credentials leave nothing behind (they made 20,000 databases and 140 MB before),
 * and one more authenticated database is refused with 503 while the others keep working.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token, request } from "../helpers/server.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const CAP = 3;

describe("databases created on demand", () => {
  let server: TidingsServer;
  let admin: string;

  before(async () => {
    server = await startServer({ databases: ["*"], maxDatabases: CAP, pollTimeoutMs: 2_000 });
    admin = await token("root", { db: "*", role: "admin" });
  });
  after(() => server.close());

  async function statsDatabases(): Promise<string[]> {
    const res = await request(`${server.url}/admin/api/stats`, { method: "GET", token: admin });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body.databases as Array<{ name: string }>).map((d) => d.name).sort();
  }

  it("creates nothing for requests without valid credentials, on any transport", async () => {
    const forged = await token("7", { db: "db0", secret: "another-secret-another-secret-another-0123" });
    const refused: Array<Promise<number>> = [];
    for (let i = 0; i < 100; i++) {
      const db = `db${i}`;
      refused.push(request(`${server.url}/${db}/bus`, { body: { last_message: null, channels: [] } }).then((r) => r.status));
      refused.push(request(`${server.url}/${db}/bus`, { token: forged, body: { last_message: null, channels: [] } }).then((r) => r.status));
      refused.push(request(`${server.url}/${db}/publish`, { body: { channel: "a", message: { type: "x" } } }).then((r) => r.status));
      refused.push(request(`${server.url}/${db}/commands`, { body: { address: "bot:1", method: "x" } }).then((r) => r.status));
      refused.push(fetch(`${server.url}/${db}/events?channels=a`).then(async (r) => (await r.arrayBuffer(), r.status)));
    }
    assert.deepEqual(new Set(await Promise.all(refused)), new Set([401]));
    // A WebSocket opens without credentials (it may send `auth` later): still nothing loaded.
    const sockets = await Promise.all(Array.from({ length: 20 }, (_, i) => FrameClient.open(wsUrl(server, {}, `ws${i}`))));
    for (const ws of sockets) {
      const reply = await ws.request({ id: 1, type: "subscribe", data: { channels: ["a"] } });
      assert.match(String(reply.error), /auth/i);
      await ws.close();
    }
    assert.deepEqual(await statsDatabases(), []);
    assert.equal(server.bus.loadedLogs().size, 0);
  });

  it("serves authenticated callers up to maxDatabases, refuses one more with 503, keeps the others working", async () => {
    const names = ["alpha", "beta", "gamma"];
    for (const db of names) {
      const res = await request(`${server.url}/${db}/bus`, { token: await token("7", { db }), body: { last_message: null, channels: [] } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    assert.deepEqual(await statsDatabases(), [...names].sort());

    const over = "delta";
    const sub = await token("7", { db: over });
    const pub = await token("app", { db: over, role: "publisher" });
    const refusals = [
      await request(`${server.url}/${over}/bus`, { token: sub, body: { last_message: null, channels: [] } }),
      await request(`${server.url}/${over}/publish`, { token: pub, body: { channel: "a", message: { type: "x" } } }),
    ];
    const events = await fetch(`${server.url}/${over}/events?channels=user:7&token=${sub}`);
    refusals.push({ status: events.status, body: await events.json(), headers: events.headers });
    for (const r of refusals) {
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, "TIDINGS_ERR_DB_TOO_MANY");
      assert.match(r.body.error.message, /maxDatabases/);
    }
    const ws = await FrameClient.open(wsUrl(server, { token: sub }, over));
    try {
      const reply = await ws.request({ id: 1, type: "subscribe", data: { channels: ["user:7"] } });
      assert.match(String(reply.error), /maxDatabases/);
    } finally {
      await ws.close();
    }
    assert.deepEqual(await statsDatabases(), [...names].sort());

    // The databases already served keep publishing and delivering.
    const pubAlpha = await token("app", { db: "alpha", role: "publisher" });
    const sent = await request(`${server.url}/alpha/notify`, { token: pubAlpha, body: { title: "still here", user: "7" } });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    const got = await request(`${server.url}/alpha/bus`, {
      token: await token("7", { db: "alpha" }),
      body: { last_message: null, channels: [] },
    });
    assert.equal(got.status, 200);
    assert.equal(got.body.message.message_id, sent.body.message_id);
  });

  it("never counts databases named in the options", async () => {
    const named = await startServer({ databases: { "*": {}, named: {} }, maxDatabases: 1 });
    try {
      for (const db of ["first", "named"]) {
        const res = await request(`${named.url}/${db}/publish`, {
          token: await token("app", { db, role: "publisher" }),
          body: { channel: "a", message: { type: "x" } },
        });
        assert.equal(res.status, 200, `${db}: ${JSON.stringify(res.body)}`);
      }
      const second = await request(`${named.url}/second/publish`, {
        token: await token("app", { db: "second", role: "publisher" }),
        body: { channel: "a", message: { type: "x" } },
      });
      assert.equal(second.status, 503);
      assert.equal(second.body.error.code, "TIDINGS_ERR_DB_TOO_MANY");
    } finally {
      await named.close();
    }
  });
});
