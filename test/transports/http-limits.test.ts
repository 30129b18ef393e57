/**
 * What one peer can make the server hold over plain HTTP: who may read /metrics, how many
 * requests one connection may pipeline, how many connections it may open. Each attack is
 * the outside probe's (issue 9, items 6 and 7), asserted on the server's own accounting.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import type { TidingsServer } from "../../src/server.js";
import type { ServerInput } from "../../src/server.js";
import { startServer, TEST_SECRET, token } from "../helpers/server.js";
import { connectionCap, connectionCapProblem, readFileLimit } from "../../src/fd-limit.js";
import { serve, tempDir } from "../cli/cli-process.js";
import { portOf } from "./longpoll-client.js";

const METRICS_TOKEN = "a-metrics-token-for-prometheus";

async function withServer(input: ServerInput, fn: (server: TidingsServer) => Promise<void>): Promise<void> {
  const server = await startServer(input);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** Polls `check` until it holds, failing after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function refusals(server: TidingsServer, reason: string): Promise<number> {
  const metric = await server.bus.metrics.refused.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

function metrics(server: TidingsServer, authorization?: string): Promise<Response> {
  return fetch(`${server.url}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
}

function openSocket(server: TidingsServer, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: portOf(server), host: "127.0.0.1", localAddress }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Everything a socket receives until the server closes it (with a deadline). */
function readToEnd(s: Socket, ms = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no end within ${ms} ms; got ${JSON.stringify(text.slice(0, 200))}`)), ms);
    s.on("data", (c: Buffer) => (text += c.toString()));
    s.once("close", () => {
      clearTimeout(timer);
      resolve(text);
    });
    s.on("error", () => {});
  });
}

describe("/metrics access", () => {
  it("answers 401 without credentials and 403 to a subscriber by default; the metrics token and admin tokens read it", () =>
    withServer({ metricsToken: METRICS_TOKEN }, async (server) => {
      const anonymous = await metrics(server);
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, "TIDINGS_ERR_AUTH_REQUIRED");
      const subscriber = await metrics(server, `Bearer ${await token("7")}`);
      assert.equal(subscriber.status, 403);
      assert.equal(((await subscriber.json()) as { error: { code: string } }).error.code, "TIDINGS_ERR_ROLE_FORBIDDEN");
      const wrong = await metrics(server, `Bearer ${METRICS_TOKEN}x`);
      assert.equal(wrong.status, 401);
      await wrong.text();
      for (const authorization of [`Bearer ${METRICS_TOKEN}`, `Bearer ${await token("ops", { role: "admin" })}`]) {
        const ok = await metrics(server, authorization);
        assert.equal(ok.status, 200);
        assert.match(await ok.text(), /^tidings_parked_polls 0$/m);
      }
    }));

  it("is open to anyone with metricsPublic", () =>
    withServer({ metricsPublic: true }, async (server) => {
      const res = await metrics(server);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /tidings_refused_total/);
    }));

  it("refuses a metrics token shorter than 16 characters at start", async () => {
    await assert.rejects(startServer({ metricsToken: "short" }), /metricsToken must have at least 16 characters/);
  });
});

describe("pipelined requests", () => {
  it("a connection pipelining thousands of /metrics requests without reading is closed; the server holds little and serves others", () =>
    withServer({ metricsToken: METRICS_TOKEN, maxPipelinedRequests: 32 }, async (server) => {
      const one = `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${METRICS_TOKEN}\r\n\r\n`;
      const attackers = await Promise.all([openSocket(server), openSocket(server)]);
      const gone = attackers.map((s) => {
        s.pause(); // never reads
        s.on("error", () => {});
        return new Promise<void>((r) => s.once("close", () => r()));
      });
      for (let round = 0; round < 5; round++) {
        for (const s of attackers) if (!s.destroyed) s.write(one.repeat(1000));
      }
      // The server closed both connections (its own count of open sockets says so)...
      await until("the server to close both pipelining connections", async () => (await refusals(server, "pipelining")) === 2);
      await until("the connections to be gone", () => server.connectionGuard.open === 0);
      // ...and holds no answer for them: queued bytes of every socket it still has are near zero.
      assert.ok(server.unsentHttpBytes() < 64 * 1024, `${server.unsentHttpBytes()} bytes held`);
      for (const s of attackers) s.destroy();
      await Promise.all(gone);
      const res = await metrics(server, `Bearer ${METRICS_TOKEN}`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^tidings_refused_total\{reason="pipelining"\} 2$/m);
    }));

  it("a client pipelining fewer requests than the cap gets every answer, in order", () =>
    withServer({}, async (server) => {
      const s = await openSocket(server);
      const received = readToEnd(s);
      s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10) + "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const text = await received;
      assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 11);
      assert.ok(text.trimEnd().endsWith('{"status":"ready"}'));
    }));
});

describe("connection caps", () => {
  it("past maxConnections a new connection is answered 503 and closed; after one closes, others are accepted", () =>
    withServer({ maxConnections: 4 }, async (server) => {
      const held = await Promise.all([0, 1, 2, 3].map(() => openSocket(server)));
      await until("4 connections counted", () => server.connectionGuard.open === 4);
      const extra = await openSocket(server);
      const answer = await readToEnd(extra);
      assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(answer, /"code":"TIDINGS_ERR_LIMIT_CONNECTIONS"/);
      assert.equal(await refusals(server, "total"), 1);
      held[0]!.destroy();
      await until("a slot to free", () => server.connectionGuard.open === 3);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      await health.text();
      for (const s of held) s.destroy();
    }));

  it("past maxConnectionsPerAddress one address is refused, another is still served (HTTP and WebSocket)", () =>
    withServer({ maxConnectionsPerAddress: 3 }, async (server) => {
      const held = await Promise.all([0, 1, 2].map(() => openSocket(server)));
      await until("3 connections counted", () => server.connectionGuard.open === 3);
      const extra = await openSocket(server);
      const answered = readToEnd(extra);
      extra.write("GET /test/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
      const answer = await answered;
      assert.match(answer, /^HTTP\/1\.1 503 /);
      assert.match(answer, /Too many open connections from your address/);
      assert.equal(await refusals(server, "per_address"), 1);
      // Another loopback address has its own count.
      const other = await openSocket(server, "127.0.0.2");
      const reply = readToEnd(other);
      other.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      assert.match(await reply, /^HTTP\/1\.1 200 OK/);
      for (const s of held) s.destroy();
    }));

  it("reads the open-files limit and says when maxConnections cannot be reached under it", () => {
    const limit = readFileLimit();
    assert.ok(limit !== null && limit.soft > 0 && limit.hard >= limit.soft, JSON.stringify(limit));
    assert.equal(connectionCapProblem(100, { soft: 1024, hard: 4096 }), null);
    assert.match(connectionCapProblem(10_000, { soft: 1024, hard: 4096 })!, /open-files limit is 1024 \(hard 4096\).*capped at 960, and the ones past it are answered 503/);
    assert.match(connectionCapProblem(0, { soft: 1024, hard: 1024 })!, /no connection cap/);
    assert.equal(connectionCap(10_000, { soft: 1024, hard: 4096 }), 960);
    assert.equal(connectionCap(0, { soft: 1024, hard: 4096 }), 960);
    assert.equal(connectionCap(100, { soft: 1024, hard: 4096 }), 100);
    assert.equal(connectionCap(100, null), 100);
  });

  it("under a low open-files limit, connections past what it holds get a 503, not a failed accept, until they leave", async () => {
    const dir = tempDir();
    const served = await serve(["--data-dir", dir.path, "--databases", "test", "--secret", TEST_SECRET], {}, 60_000, 200);
    const held: Socket[] = [];
    try {
      const said = (): Record<string, unknown> | undefined => served.logs.find((l) => typeof l.msg === "string" && /open-files limit is 200/.test(l.msg));
      for (const end = Date.now() + 10_000; said() === undefined && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      const warning = said();
      assert.ok(warning, "the start-up log says the cap was lowered");
      assert.equal(warning.maxConnections, 136);
      const { port } = new URL(served.url);
      // More idle connections than the process has descriptors for.
      for (let i = 0; i < 240; i++) {
        const s = connect(Number(port), "127.0.0.1");
        s.on("error", () => {});
        held.push(s);
      }
      await Promise.all(held.map((s) => new Promise<void>((r) => (s.connecting ? s.once("connect", () => r()).once("close", () => r()) : r()))));
      const res = await fetch(`${served.url}/healthz`);
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "TIDINGS_ERR_LIMIT_CONNECTIONS");
      for (const s of held) s.destroy();
      held.length = 0;
      // Once they leave, the server answers again.
      for (const end = Date.now() + 15_000; ; ) {
        const again = await fetch(`${served.url}/healthz`).catch(() => null);
        if (again?.status === 200) break;
        if (Date.now() > end) throw new Error(`no 200 from /healthz after the idle connections left (last: ${again?.status})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const s of held) s.destroy();
      await served.stop("SIGKILL");
      dir.remove();
    }
  });
});
