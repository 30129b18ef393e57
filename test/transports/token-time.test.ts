/**
 * Token time on the long-poll: a parked poll ends when its token expires (answered empty,
 * then the next poll gets 401) and delivers nothing after `exp`; a token issued in the
 * future (beyond the clock-skew tolerance) is refused everywhere.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createSecretKey } from "node:crypto";
import { SignJWT } from "jose";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token, TEST_SECRET } from "../helpers/server.js";
import { call } from "./longpoll-client.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const EMPTY = '{"channel":null,"message":null}';

function signed(iatOffsetSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ db: "test", role: "subscriber" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject("7")
    .setIssuer("tidings")
    .setIssuedAt(now + iatOffsetSeconds)
    .setExpirationTime(now + 3600)
    .sign(createSecretKey(Buffer.from(TEST_SECRET, "utf8")));
}

describe("long-poll: token expiry while parked", () => {
  let server: TidingsServer;
  before(async () => {
    server = await startServer({ pollTimeoutMs: 60_000 });
  });
  after(() => server.close());

  it("answers a parked poll empty at exp, then refuses the token; the cursor loses nothing", async () => {
    const cursor = await server.bus.publish("test", "user:7", { type: "before" });
    // Two seconds: `exp` is whole seconds, so a one-second token may be dead before the request.
    const short = await token("7", { ttlSeconds: 2 });
    const expiresAt = (JSON.parse(Buffer.from(short.split(".")[1]!, "base64url").toString()) as { exp: number }).exp * 1000;
    const started = Date.now();
    // The poll timeout is a minute: an answer within seconds can only be the expiry.
    const parked = await call(`${server.url}/test/bus`, { token: short, body: { last_message: cursor, channels: [] }, signal: AbortSignal.timeout(20_000) });
    assert.equal(parked.status, 200, parked.text);
    assert.equal(parked.text, EMPTY);
    assert.ok(Date.now() >= expiresAt - 50, `answered ${expiresAt - Date.now()} ms before exp`);
    assert.ok(Date.now() - started < 15_000);

    // Published after exp: not for the expired token, there for a fresh one from the same cursor.
    const id = await server.bus.publish("test", "user:7", { type: "after" });
    const refused = await call(`${server.url}/test/bus`, { token: short, body: { last_message: cursor, channels: [] } });
    assert.equal(refused.status, 401);
    assert.equal((refused.json as { error: { code: string } }).error.code, "TIDINGS_ERR_AUTH_EXPIRED");
    const fresh = await call(`${server.url}/test/bus`, { token: await token("7"), body: { last_message: cursor, channels: [] } });
    assert.deepEqual(fresh.json, { channel: "user:7", message: { message_id: id, type: "after" } });
  });
});

describe("tokens issued in the future", () => {
  let server: TidingsServer;
  before(async () => {
    // An accepted poll with nothing to read parks: a short poll timeout ends it.
    server = await startServer({ pollTimeoutMs: 500 });
  });
  after(() => server.close());

  it("refuses a token whose iat is an hour ahead, on the long-poll, SSE and WebSocket", async () => {
    const future = await signed(3600);
    const message = /^The token was issued in the future \(iat \d+\): check the clock of the machine that signed it\.$/;
    const polled = await call(`${server.url}/test/bus`, { token: future, body: { last_message: null, channels: [] } });
    assert.equal(polled.status, 401);
    const error = (polled.json as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "TIDINGS_ERR_AUTH_INVALID");
    assert.match(error.message, message);

    const sse = await fetch(`${server.url}/test/events?channels=user:7&token=${future}`);
    assert.equal(sse.status, 401);
    assert.match(((await sse.json()) as { error: { message: string } }).error.message, message);

    const ws = await FrameClient.open(wsUrl(server));
    try {
      const reply = await ws.request({ id: 1, type: "auth", data: { token: future } });
      assert.match(String(reply.error), message);
      assert.equal(reply.data.code, "TIDINGS_ERR_AUTH_INVALID");
    } finally {
      await ws.close();
    }
  });

  it("accepts a token whose iat is within the clock-skew tolerance (30 s ahead)", async () => {
    const r = await call(`${server.url}/test/bus`, { token: await signed(30), body: { last_message: null, channels: [] } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, EMPTY);
  });
});
