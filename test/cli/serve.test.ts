import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { METRICS_TOKEN, parkedPolls, post, runCli, runCliOk, serve, tempDir, type Served } from "./cli-process.js";

describe("tidings serve", () => {
  const dir = tempDir();
  const store = `sqlite:${join(dir.path, "t.db")}`;
  let server: Served | undefined;

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", store, "--databases", "test"]);
  });
  after(async () => {
    await server?.stop("SIGKILL");
    dir.remove();
  });

  it("answers /healthz and /readyz and logs JSON", async () => {
    const health = await fetch(`${server!.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    const ready = await fetch(`${server!.url}/readyz`);
    assert.deepEqual([ready.status, await ready.json()], [200, { status: "ready" }]);
    const listening = server!.logs.find((l) => l.msg === "tidings listening")!;
    assert.equal(listening.engine, "sqlite");
    assert.equal(listening.store, store);
  });

  it("creates a secret in the data directory that `tidings token` finds", async () => {
    const secretFile = join(dir.path, "secret");
    assert.ok(existsSync(secretFile));
    assert.ok(readFileSync(secretFile, "utf8").trim().length >= 32);
    const minted = await runCli(["token", "--data-dir", dir.path, "--db", "test", "--user", "7"]);
    assert.equal(minted.code, 0, minted.stderr);
    const token = minted.stdout.trim();
    const published = await runCli(["publish", "--url", server!.url, "--data-dir", dir.path, "--db", "test", "--channel", "user:7", '{"type":"hello"}']);
    assert.equal(published.code, 0, published.stderr);
    const id = published.stdout.trim();
    const res = await post(`${server!.url}/test/bus`, token, { last_message: null, channels: ["user:7"] });
    assert.deepEqual(res, { status: 200, body: { channel: "user:7", message: { message_id: id, type: "hello" } } });
  });

  it("refuses a token signed with another secret", async () => {
    const minted = await runCliOk(["token", "--secret", "x".repeat(40), "--db", "test", "--user", "7"]);
    const res = await post(`${server!.url}/test/bus`, minted, { last_message: null, channels: [] });
    assert.equal(res.status, 401);
    assert.equal((res.body as { error: { code: string } }).error.code, "TIDINGS_ERR_AUTH_INVALID");
  });
});

describe("tidings serve shutdown", () => {
  it("answers a parked poll empty on SIGTERM, exits 0, and keeps acknowledged messages across a restart", async (t) => {
    const dir = tempDir();
    const args = ["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test"];
    let server = await serve(args);
    t.after(async () => {
      await server.stop("SIGKILL");
      dir.remove();
    });
    const publish = (body: string) =>
      runCliOk(["publish", "--url", server.url, "--data-dir", dir.path, "--db", "test", "--channel", "user:7", body]);
    const id1 = await publish('{"type":"first"}');
    const id2 = await publish('{"type":"second","n":2}');
    const token = await runCliOk(["token", "--data-dir", dir.path, "--db", "test", "--user", "7"]);

    const parked = post(`${server.url}/test/bus`, token, { last_message: id2, channels: ["user:7"] });
    await parkedPolls(server.url, 1);
    const exit = server.stop("SIGTERM");
    assert.deepEqual(await parked, { status: 200, body: { channel: null, message: null } });
    assert.equal(await exit, 0);
    assert.ok(server.logs.some((l) => l.msg === "stopped"));

    server = await serve(args);
    const res = await post(`${server.url}/test/bus`, token, { last_message: id1, channels: ["user:7"] });
    assert.deepEqual(res, { status: 200, body: { channel: "user:7", message: { message_id: id2, type: "second", n: 2 } } });
    assert.equal(await server.stop("SIGINT"), 0);
  });
});

describe("tidings serve and a rejection nobody awaited", () => {
  it("logs it as an error with its stack and keeps serving", async (t) => {
    const dir = tempDir();
    const preload = fileURLToPath(new URL("./fixtures/reject-on-signal.mjs", import.meta.url));
    const server = await serve(["--data-dir", dir.path, "--store", "memory:", "--databases", "test"], { NODE_OPTIONS: `--import ${preload}` });
    t.after(async () => {
      await server.stop("SIGKILL");
      dir.remove();
    });
    server.child.kill("SIGUSR2");
    const deadline = Date.now() + 20_000;
    let logged: Record<string, unknown> | undefined;
    while ((logged = server.logs.find((l) => /unhandled promise rejection/.test(String(l.msg)))) === undefined) {
      assert.equal(server.child.exitCode, null, "the server exited on the rejection");
      assert.ok(Date.now() < deadline, "no log line for the rejection within 20 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(logged.level, 50);
    assert.match(String((logged.err as { stack?: unknown }).stack), /a rejection nobody awaited/);
    const health = await fetch(`${server.url}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: "ok" }]);
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.match(await metrics.text(), /^tidings_unhandled_rejections_total 1$/m, "counted for alerting");
    assert.equal(await server.stop("SIGTERM"), 0);
  });
});
