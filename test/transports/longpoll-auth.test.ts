/**
 * Credentials and CORS on the long-poll and publish routes: Bearer JWT, Tryton's Session
 * header, the session cookie; every refusal with its status and stable code.
 */
import { describe, it, before, after, mock } from "node:test";
import assert from "node:assert/strict";
import { Agent, request as httpRequest } from "node:http";
import { SignJWT } from "jose";
import type { TidingsServer } from "../../src/server.js";
import { StaticSessionVerifier } from "../../src/auth/tryton-session.js";
import { startServer, token, TEST_SECRET } from "../helpers/server.js";
import { call, errorBody, oneMessage, poll, publish } from "./longpoll-client.js";

const ORIGIN = "http://app.example:8000";

function sessionHeader(login: string, userId: string, key: string): string {
  return `Session ${Buffer.from(`${login}:${userId}:${key}`, "utf8").toString("base64")}`;
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString("base64url");
}

describe("long-poll: credentials", () => {
  let server: TidingsServer;
  let cursor: string;
  let id: string;

  before(async () => {
    server = await startServer({
      databases: ["test", "other"],
      corsOrigins: [ORIGIN],
      pollTimeoutMs: 30_000,
      sessionVerifier: new StaticSessionVerifier([
        { db: "test", login: "admin", userId: "1", key: "s3cret-key" },
        { db: "test", login: "jean:paul", userId: "3", key: "k" },
      ]),
    });
    cursor = await publish(server, "user:1", { type: "t", n: 0 });
    id = await publish(server, "user:1", { type: "t", n: 1 });
  });
  after(() => server.close());

  /** A poll for user 1's next message with the given headers; answers at once when allowed. */
  function pollWith(headers: Record<string, string>, db = "test") {
    return call(`${server.url}/${db}/bus`, { headers, body: { last_message: cursor, channels: [] } });
  }

  function expected(): string {
    return oneMessage("user:1", id, { type: "t", n: 1 });
  }

  async function refused(headers: Record<string, string>, status: number, body: string, db = "test"): Promise<void> {
    const r = await pollWith(headers, db);
    assert.equal(r.status, status, r.text);
    assert.equal(r.text, body);
    if (status === 401) assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="tidings"');
    // The server stays up: a good request right after succeeds.
    assert.equal((await pollWith({ authorization: `Bearer ${await token("1")}` })).text, expected());
  }

  it("accepts a Bearer JWT", async () => {
    assert.equal((await pollWith({ authorization: `Bearer ${await token("1")}` })).text, expected());
  });

  it("accepts Tryton's Session base64(login:user_id:key) through the session verifier", async () => {
    assert.equal((await pollWith({ authorization: sessionHeader("admin", "1", "s3cret-key") })).text, expected());
    // A login may hold colons; user id and key never do.
    const before = await publish(server, "user:3", { type: "t" });
    const for3 = await publish(server, "user:3", { type: "t" });
    const r = await call(`${server.url}/test/bus`, {
      headers: { authorization: sessionHeader("jean:paul", "3", "k") },
      body: { last_message: before, channels: [] },
    });
    assert.equal(r.text, oneMessage("user:3", for3, { type: "t" }));
  });

  it("accepts the session cookie holding a token", async () => {
    const tok = await token("1");
    assert.equal((await pollWith({ cookie: `theme=dark; tidings_session=${encodeURIComponent(tok)}; x=1` })).text, expected());
  });

  it("401 without credentials", async () => {
    await refused({}, 401, errorBody("TIDINGS_ERR_AUTH_REQUIRED", "Authentication required."));
    await refused({ cookie: "other=1" }, 401, errorBody("TIDINGS_ERR_AUTH_REQUIRED", "Authentication required."));
  });

  it("401 for an expired token", async () => {
    await refused({ authorization: `Bearer ${await token("1", { ttlSeconds: -10 })}` }, 401, errorBody("TIDINGS_ERR_AUTH_EXPIRED", "The token has expired."));
  });

  it("401 for a token signed with another secret (forged)", async () => {
    const forged = await token("1", { secret: "another-secret-another-secret-another-secret" });
    await refused({ authorization: `Bearer ${forged}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
    await refused({ cookie: `tidings_session=${forged}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
  });

  it('401 for an unsigned token (alg "none") and for another algorithm, even with the right secret', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: "1", db: "test", role: "admin", iss: "tidings", iat: now, exp: now + 3600 };
    const none = `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims)}.`;
    await refused({ authorization: `Bearer ${none}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
    const hs512 = await new SignJWT(claims).setProtectedHeader({ alg: "HS512" }).sign(new TextEncoder().encode(TEST_SECRET));
    await refused({ authorization: `Bearer ${hs512}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
    await refused({ authorization: "Bearer not.a.jwt" }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "Invalid token."));
  });

  it("401 for a token without a role or database", async () => {
    const key = new TextEncoder().encode(TEST_SECRET);
    const noRole = await new SignJWT({ db: "test" }).setProtectedHeader({ alg: "HS256" }).setSubject("1").setIssuer("tidings").setExpirationTime("1h").sign(key);
    await refused({ authorization: `Bearer ${noRole}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "The token has no valid role."));
    const noDb = await new SignJWT({ role: "subscriber" }).setProtectedHeader({ alg: "HS256" }).setSubject("1").setIssuer("tidings").setExpirationTime("1h").sign(key);
    await refused({ authorization: `Bearer ${noDb}` }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "The token lacks a subject or a database."));
  });

  it("403 for a token of another database; an admin token for every database works", async () => {
    await refused(
      { authorization: `Bearer ${await token("1", { db: "other" })}` },
      403,
      errorBody("TIDINGS_ERR_AUTH_WRONG_DB", 'These credentials are for database "other".'),
    );
    const everywhere = await token("1", { db: "*", role: "admin" });
    assert.equal((await pollWith({ authorization: `Bearer ${everywhere}` })).text, expected());
    const subscriberEverywhere = await token("1", { db: "*" });
    await refused({ authorization: `Bearer ${subscriberEverywhere}` }, 403, errorBody("TIDINGS_ERR_AUTH_WRONG_DB", 'These credentials are for database "*".'));
  });

  it("401 for Session credentials that are unknown, malformed or for another database", async () => {
    const unknown = errorBody("TIDINGS_ERR_AUTH_INVALID", "Unknown or expired Tryton session.");
    await refused({ authorization: sessionHeader("admin", "1", "wrong-key") }, 401, unknown);
    await refused({ authorization: sessionHeader("admin", "2", "s3cret-key") }, 401, unknown);
    await refused({ authorization: sessionHeader("admin", "1", "s3cret-key") }, 401, unknown, "other");
    await refused(
      { authorization: `Session ${Buffer.from("admin-1-key").toString("base64")}` },
      401,
      errorBody("TIDINGS_ERR_AUTH_INVALID", "Session credentials must be base64(login:user_id:key)."),
    );
    await refused({ authorization: sessionHeader("admin", "one", "k") }, 401, errorBody("TIDINGS_ERR_AUTH_INVALID", "The Tryton user id must be an integer."));
  });

  it("401 for an unsupported scheme or an empty one", async () => {
    const body = errorBody("TIDINGS_ERR_AUTH_INVALID", "Unsupported Authorization scheme: use Bearer or Session.");
    await refused({ authorization: `Basic ${Buffer.from("admin:pw").toString("base64")}` }, 401, body);
    await refused({ authorization: "Bearer" }, 401, body);
  });

  it("adds the caller's user:<id> for Session callers too, and keeps other users' channels out", async () => {
    const r = await call(`${server.url}/test/bus`, {
      headers: { authorization: sessionHeader("admin", "1", "s3cret-key") },
      body: { last_message: cursor, channels: ["user:2"] },
    });
    assert.equal(r.status, 403);
    assert.equal(r.text, errorBody("TIDINGS_ERR_CHANNEL_FORBIDDEN", 'Not allowed to read channel "user:2".', { channel: "user:2" }));
  });
});

describe("long-poll: one keep-alive connection, several tokens and channel lists", () => {
  let server: TidingsServer;
  let agent: Agent;
  const ids: Record<string, string> = {};
  let cursor: string;

  before(async () => {
    server = await startServer({ pollTimeoutMs: 30_000 });
    cursor = await publish(server, "team", { type: "before" });
    for (const channel of ["team", "user:1", "user:2"]) ids[channel] = await publish(server, channel, { type: "t", on: channel });
    // One socket for every request below: what a re-polling client's connection sees.
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
  });
  after(async () => {
    agent.destroy();
    await server.close();
  });

  function pollOn(tok: string, channels: string[]): Promise<{ status: number; body: string; port: number }> {
    const text = JSON.stringify({ last_message: cursor, channels });
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${server.url}/test/bus`, {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text), authorization: `Bearer ${tok}` },
      });
      req.on("error", reject);
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, body, port: req.socket!.localPort! }));
      });
      req.end(text);
    });
  }

  it("checks every change of channels or token, and remembers nothing a token was refused", async () => {
    const one = await token("1", { channels: ["team"] });
    const two = await token("2");
    const forbidden = (channel: string) => errorBody("TIDINGS_ERR_CHANNEL_FORBIDDEN", `Not allowed to read channel "${channel}".`, { channel });
    const team = oneMessage("team", ids.team!, { type: "t", on: "team" });
    const steps: Array<[string, string, string[], number, string]> = [
      ["user 1 on team", one, ["team"], 200, team],
      ["user 1 again", one, ["team"], 200, team],
      ["user 2 with the list user 1 just used", two, ["team"], 403, forbidden("team")],
      ["user 1 on user:2", one, ["user:2"], 403, forbidden("user:2")],
      ["user 1 on user:2 again", one, ["user:2"], 403, forbidden("user:2")],
      ["user 1 on team and user:2", one, ["team", "user:2"], 403, forbidden("user:2")],
      ["user 2 on its own channel", two, ["user:2"], 200, oneMessage("user:2", ids["user:2"]!, { type: "t", on: "user:2" })],
      ["user 1 with the list user 2 just used", one, ["user:2"], 403, forbidden("user:2")],
      ["user 1 back on team", one, ["team"], 200, team],
    ];
    const ports = new Set<number>();
    for (const [what, tok, channels, status, body] of steps) {
      const r = await pollOn(tok, channels);
      assert.deepEqual([r.status, r.body], [status, body], what);
      ports.add(r.port);
    }
    assert.equal(ports.size, 1, "every poll went over the same connection");
  });

  it("answers 401 once the connection's token expires", async () => {
    // Two seconds: `exp` is whole seconds, so a one-second token may have a few milliseconds left.
    const brief = await token("1", { ttlSeconds: 2 });
    assert.equal((await pollOn(brief, ["user:1"])).status, 200);
    // Past the token's life (server and test share the clock), without waiting for it.
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 3000 });
    try {
      const r = await pollOn(brief, ["user:1"]);
      assert.deepEqual([r.status, r.body], [401, errorBody("TIDINGS_ERR_AUTH_EXPIRED", "The token has expired.")]);
    } finally {
      mock.timers.reset();
    }
  });
});

describe("publish and notify: roles", () => {
  let server: TidingsServer;
  before(async () => {
    server = await startServer({
      sessionVerifier: new StaticSessionVerifier([{ db: "test", login: "admin", userId: "1", key: "k" }]),
    });
  });
  after(() => server.close());

  const forbidden = errorBody("TIDINGS_ERR_ROLE_FORBIDDEN", "Publishing needs the publisher or admin role.");

  for (const route of ["publish", "notify"] as const) {
    const body = route === "publish" ? { channel: "user:1", message: { type: "t" } } : { title: "Hi", user: 1 };

    it(`/${route} needs the publisher or admin role`, async () => {
      const head = await server.bus.store.head("test");
      const asSubscriber = await call(`${server.url}/test/${route}`, { token: await token("1"), body });
      assert.equal(asSubscriber.status, 403);
      assert.equal(asSubscriber.text, forbidden);
      const asSession = await call(`${server.url}/test/${route}`, { headers: { authorization: sessionHeader("admin", "1", "k") }, body });
      assert.equal(asSession.status, 403);
      assert.equal(asSession.text, forbidden);
      const anonymous = await call(`${server.url}/test/${route}`, { body });
      assert.equal(anonymous.status, 401);
      // Nothing was published by the refused calls.
      assert.equal(await server.bus.store.head("test"), head);
      for (const role of ["publisher", "admin"] as const) {
        const ok = await call(`${server.url}/test/${route}`, { token: await token("p", { role }), body });
        assert.equal(ok.status, 200, ok.text);
        assert.match(ok.text, /^\{"message_id":"[0-9a-z]{9}:\d{16}"\}$/);
      }
    });
  }
});

describe("long-poll: CORS", () => {
  let server: TidingsServer;
  let user1: string;
  before(async () => {
    server = await startServer({ corsOrigins: [ORIGIN], pollTimeoutMs: 30_000 });
    user1 = await token("1");
  });
  after(() => server.close());

  it("answers a preflight from a configured origin, allowing credentials", async () => {
    const r = await call(`${server.url}/test/bus`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    assert.equal(r.status, 204);
    assert.equal(r.text, "");
    assert.equal(r.headers.get("access-control-allow-origin"), ORIGIN);
    assert.equal(r.headers.get("access-control-allow-credentials"), "true");
    assert.equal(r.headers.get("access-control-allow-methods"), "GET, POST, DELETE, OPTIONS");
    assert.equal(r.headers.get("access-control-allow-headers"), "authorization,content-type");
    assert.equal(r.headers.get("vary"), "Origin");
  });

  it("refuses a preflight from any other origin, without CORS headers", async () => {
    for (const origin of ["http://evil.example", "http://app.example:8001", "null"]) {
      const r = await call(`${server.url}/test/bus`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
      assert.equal(r.status, 403, origin);
      assert.equal(r.headers.get("access-control-allow-origin"), null);
      assert.equal(r.headers.get("access-control-allow-credentials"), null);
    }
  });

  it("puts the CORS headers on answers and on errors for a configured origin only", async () => {
    const cursor = await publish(server, "user:1", { type: "t" });
    const id = await publish(server, "user:1", { type: "t" });
    const ok = await call(`${server.url}/test/bus`, { token: user1, headers: { origin: ORIGIN }, body: { last_message: cursor, channels: [] } });
    assert.equal(ok.text, oneMessage("user:1", id, { type: "t" }));
    assert.equal(ok.headers.get("access-control-allow-origin"), ORIGIN);
    assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
    // A browser must be able to read the error, so the headers are on it too.
    const denied = await call(`${server.url}/test/bus`, { headers: { origin: ORIGIN }, body: { channels: [] } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get("access-control-allow-origin"), ORIGIN);
    const foreign = await call(`${server.url}/test/bus`, { token: user1, headers: { origin: "http://evil.example" }, body: { last_message: cursor, channels: [] } });
    assert.equal(foreign.status, 200);
    assert.equal(foreign.headers.get("access-control-allow-origin"), null);
    assert.equal(foreign.headers.get("access-control-allow-credentials"), null);
  });
});
