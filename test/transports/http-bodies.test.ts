/**
 * Request bodies of authenticated users (issue 9, item 10): a body that stops arriving is
 * refused after bodyTimeoutMs (408) instead of being held until the 330 s request timeout,
 * and one user's bodies being received at once are capped in bytes over all its
 * connections (429), while other users are served.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import type { ServerInput, TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { portOf } from "./longpoll-client.js";

async function withServer(input: ServerInput, fn: (server: TidingsServer) => Promise<void>): Promise<void> {
  const server = await startServer({ accessRules: [{ channels: "room-*" }], ...input });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A socket that sent the head of a POST and `sent` bytes of a body of `length`; collects what it receives. */
async function stalledBody(server: TidingsServer, path: string, tok: string, length: number, sent: number) {
  const s: Socket = await new Promise((resolve, reject) => {
    const c = connect(portOf(server), "127.0.0.1", () => resolve(c));
    c.once("error", reject);
  });
  let received = "";
  s.on("data", (c: Buffer) => (received += c.toString()));
  s.on("error", () => {});
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`);
  s.write(`{"channel":"room-1","message":{"type":"t","data":"${"x".repeat(Math.max(0, sent - 40))}`);
  return { socket: s, received: () => received, closed };
}

describe("request bodies", () => {
  for (const path of ["/test/publish", "/test/bus"]) {
    it(`a body on ${path} that stops arriving gets 408 after bodyTimeoutMs and its connection is closed`, () =>
      withServer({ bodyTimeoutMs: 300 }, async (server) => {
        const tok = await token("app", { role: "publisher" });
        const started = Date.now();
        const slow = await stalledBody(server, path, tok, 1000, 100);
        await Promise.race([
          slow.closed,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed; got ${JSON.stringify(slow.received())}`)), 5_000)),
        ]);
        assert.ok(Date.now() - started >= 250, "not before the deadline");
        assert.match(slow.received(), /^HTTP\/1\.1 408 /);
        assert.match(slow.received(), /"code":"TIDINGS_ERR_REQUEST_TIMEOUT"/);
        assert.equal(server.bodies.bytes.total, 0);
      }));
  }

  it("one user's bodies arriving at once are capped by maxBodyBytesPerUser; other users publish meanwhile", () =>
    withServer({ maxBodyBytes: 64 * 1024, maxBodyBytesPerUser: 128 * 1024, bodyTimeoutMs: 30_000 }, async (server) => {
      const tok = await token("app", { role: "publisher" });
      const key = "test\u0000app";
      const first = await stalledBody(server, "/test/publish", tok, 60_000, 50_000);
      const second = await stalledBody(server, "/test/publish", tok, 60_000, 50_000);
      try {
        await until("100 KB of the user's bodies to be held", () => server.bodies.bytes.of(key) >= 100_000);
        const third = await stalledBody(server, "/test/publish", tok, 60_000, 50_000);
        await Promise.race([
          third.closed,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed; got ${JSON.stringify(third.received())}`)), 5_000)),
        ]);
        assert.match(third.received(), /^HTTP\/1\.1 429 /);
        assert.match(third.received(), /"code":"TIDINGS_ERR_LIMIT_BODIES"/);
        assert.ok(server.bodies.bytes.of(key) <= 128 * 1024, `${server.bodies.bytes.of(key)} bytes held`);
        // Another publisher is not affected.
        const other = await fetch(`${server.url}/test/publish`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${await token("other", { role: "publisher" })}` },
          body: JSON.stringify({ channel: "room-1", message: { type: "t" } }),
        });
        assert.equal(other.status, 200);
        await other.text();
      } finally {
        first.socket.destroy();
        second.socket.destroy();
      }
      await until("the held body bytes to be released", () => server.bodies.bytes.total === 0);
    }));
});
