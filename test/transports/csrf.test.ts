/**
 * Cross-site request forgery: a page on another site can make a browser send a form or a
 * `text/plain` POST with the session cookie attached, and needs no CORS permission to do so.
 * Every route that reads a JSON body wants `Content-Type: application/json` (415 otherwise),
 * and a request authenticated by the cookie is accepted only from this server's origin or a
 * configured one (403). Nothing the forged request asked for is stored. Tryton's
 * `POST /<db>/bus` keeps serving its clients as they are, whatever they declare.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token, request } from "../helpers/server.js";

const ALLOWED = "https://app.example";
const EVIL = "https://evil.example";

describe("cross-site request forgery", () => {
  let server: TidingsServer;
  let cookie: string;
  let publisher: string;
  let host: string;

  before(async () => {
    server = await startServer({ corsOrigins: [ALLOWED], pollTimeoutMs: 2_000 });
    const admin = await token("1", { role: "admin" });
    cookie = `tidings_session=${admin}`;
    publisher = await token("2", { role: "publisher" });
    host = new URL(server.url).host;
  });
  after(() => server.close());

  /** The newest message id of the test database: unchanged when a refused request stored nothing. */
  const head = () => server.bus.store.head("test");

  const ROUTES: Array<[string, unknown]> = [
    ["/test/publish", { channel: "room", message: { type: "forged" } }],
    ["/test/notify", { title: "forged", user: "7" }],
    ["/test/changes", { model: "invoice", type: "update", object: { id: 42 } }],
    ["/test/commands", { address: "bot:1", method: "wipe" }],
  ];

  for (const [path, body] of ROUTES) {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null]) {
      it(`POST ${path} with the cookie and ${type ?? "no Content-Type"} is refused with 415, nothing stored`, async () => {
        const before = await head();
        const headers: Record<string, string> = { cookie };
        if (type !== null) headers["content-type"] = type;
        // Bytes, not a string: fetch would declare a string text/plain itself.
        const res = await fetch(`${server.url}${path}`, { method: "POST", headers, body: Buffer.from(JSON.stringify(body)) });
        assert.equal(res.status, 415);
        const got = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(got.error.code, "TIDINGS_ERR_REQUEST_CONTENT_TYPE");
        const given = type === null ? "none was given" : `not ${JSON.stringify(type)}`;
        assert.equal(got.error.message, `The body must be sent with Content-Type: application/json, ${given}.`);
        assert.equal(await head(), before);
        if (path === "/test/commands") assert.deepEqual((await server.bus.store.listCommands("test", { address: "bot:1", limit: 10 })).length, 0);
      });
    }

    it(`POST ${path} with the cookie from another site is refused with 403, nothing stored`, async () => {
      const before = await head();
      for (const from of [{ origin: EVIL }, { referer: `${EVIL}/page.html` }, { origin: "null" }] as Array<Record<string, string>>) {
        const res = await request(`${server.url}${path}`, { headers: { cookie, ...from }, body });
        assert.equal(res.status, 403, JSON.stringify(from));
        assert.equal(res.body.error.code, "TIDINGS_ERR_ORIGIN_FORBIDDEN");
      }
      assert.equal(await head(), before);
    });
  }

  it("accepts JSON with a charset, the cookie from this server's origin or an allowed one, and Bearer tokens from anywhere", async () => {
    const body = { channel: "room", message: { type: "fine" } };
    const asked: Array<Record<string, string>> = [
      { cookie, origin: ALLOWED, "content-type": "application/json; charset=utf-8" },
      { cookie, origin: `http://${host}` },
      { cookie, referer: `http://${host}/admin` },
      { cookie }, // no page at all: curl with a cookie
      { authorization: `Bearer ${publisher}`, origin: EVIL, "content-type": "Application/JSON" },
    ];
    for (const headers of asked) {
      const res = await request(`${server.url}/test/publish`, { headers, body });
      assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.message_id, /./);
    }
  });

  it("refuses a cookie-authenticated cancel, long-poll and admin read from another site", async () => {
    const sent = await request(`${server.url}/test/commands`, { token: publisher, body: { address: "bot:2", method: "x" } });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const cancel = await fetch(`${server.url}/test/commands/${sent.body.id}/cancel`, { method: "POST", headers: { cookie, origin: EVIL } });
    assert.equal(cancel.status, 403);
    assert.equal(((await cancel.json()) as { error: { code: string } }).error.code, "TIDINGS_ERR_ORIGIN_FORBIDDEN");
    assert.equal((await server.bus.store.getCommand("test", sent.body.id))?.state, "pending");

    const poll = await request(`${server.url}/test/bus`, { headers: { cookie, origin: EVIL }, body: { last_message: null, channels: [] } });
    assert.equal(poll.status, 403);
    assert.equal(poll.body.error.code, "TIDINGS_ERR_ORIGIN_FORBIDDEN");

    const stats = await fetch(`${server.url}/admin/api/stats`, { headers: { cookie, referer: `${EVIL}/` } });
    assert.equal(stats.status, 403);
    assert.equal(((await stats.json()) as { error: { code: string } }).error.code, "TIDINGS_ERR_ORIGIN_FORBIDDEN");
  });

  it("keeps Tryton's long-poll open to what its clients send, form-encoded `curl -d` included", async () => {
    const subscriber = await token("7");
    const cursor = await server.bus.publish("test", "room", { type: "start" });
    const id = await server.bus.publish("test", "user:7", { type: "hello" });
    const res = await fetch(`${server.url}/test/bus`, {
      method: "POST",
      headers: { authorization: `Bearer ${subscriber}`, "content-type": "application/x-www-form-urlencoded" },
      body: JSON.stringify({ last_message: cursor, channels: [] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { channel: "user:7", message: { type: "hello", message_id: id } });
  });
});
