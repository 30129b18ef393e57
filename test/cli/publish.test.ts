import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { CLI, cleanEnv, parkedPolls, post, runCli, runCliOk, serve, tempDir, within, type Served } from "./cli-process.js";

describe("tidings publish, notify and tail", () => {
  const dir = tempDir();
  let server: Served | undefined;
  let remote: string[] = [];
  let subscriber = "";
  let publisher = "";

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test"]);
    remote = ["--url", server.url, "--data-dir", dir.path, "--db", "test"];
    subscriber = await runCliOk(["token", "--data-dir", dir.path, "--db", "test", "--user", "7"]);
    publisher = await runCliOk(["token", "--data-dir", dir.path, "--db", "test", "--user", "app", "--role", "publisher"]);
  });
  after(async () => {
    await server?.stop("SIGKILL");
    dir.remove();
  });

  const poll = (last: string | null) => post(`${server!.url}/test/bus`, subscriber, { last_message: last, channels: ["user:7"] });
  // Setup publishes go straight to HTTP: only the command under test is spawned.
  const publish = async (channel: string, message: unknown) =>
    ((await post(`${server!.url}/test/publish`, publisher, { channel, message })).body as { message_id: string }).message_id;

  it("publishes the argument and prints the message_id a subscriber receives", async () => {
    const res = await runCli(["publish", ...remote, "--channel", "user:7", '{"type":"invoice","id":42,"message_id":"mine"}']);
    assert.equal(res.code, 0, res.stderr);
    const id = res.stdout.trim();
    assert.match(id, /^[0-9a-z]{9}:\d+$/);
    // The bus assigns message_id; the publisher's own is replaced.
    assert.deepEqual((await poll(null)).body, { channel: "user:7", message: { message_id: id, type: "invoice", id: 42 } });
  });

  it("publishes JSON lines from stdin as one ordered batch, one id per line", async () => {
    const res = await runCli(["publish", ...remote, "--channel", "user:7", "--type", "line"], { input: '{"n":1}\n{"n":2,"type":"own"}\n' });
    assert.equal(res.code, 0, res.stderr);
    const ids = res.stdout.trim().split("\n");
    assert.equal(ids.length, 2);
    assert.ok(ids[0]! < ids[1]!);
    const second = await post(`${server!.url}/test/bus`, subscriber, { last_message: ids[0], channels: ["user:7"] });
    assert.deepEqual(second.body, { channel: "user:7", message: { message_id: ids[1], n: 2, type: "own" } });
  });

  it("notify prints the message_id of the notification the user receives", async () => {
    const marker = await publish("user:7", { type: "marker" });
    const res = await runCli(["notify", ...remote, "--user", "7", "--title", "Invoice paid", "--body", "INV-42\nthanks", "--priority", "2"]);
    assert.equal(res.code, 0, res.stderr);
    const id = res.stdout.trim();
    assert.deepEqual((await poll(marker)).body, {
      channel: "user:7",
      message: { message_id: id, type: "notification", kind: "notification", title: "Invoice paid", body: "INV-42\nthanks", priority: 2 },
    });
  });

  it("fails with the server's error code when the role may not publish", async () => {
    const res = await runCli(["publish", ...remote, "--token", subscriber, "--channel", "user:7", '{"type":"x"}']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /TIDINGS_ERR_ROLE_FORBIDDEN/);
    const bad = await runCli(["notify", ...remote, "--title", "no target"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Give --user or --client/);
  });

  it("tail prints the messages after --last-message, then live ones, as JSON lines", async () => {
    const a = await publish("tail-test", { type: "a" });
    const b = await publish("tail-test", { type: "b" });
    const child = spawn(process.execPath, [CLI, "tail", ...remote, "--channels", "tail-test,other", "--last-message", a, "--count", "2"], {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      // After printing b the tail parks; a message published then is delivered live.
      await parkedPolls(server!.url, 1);
      const c = await publish("tail-test", { type: "c", x: [1, { y: null }] });
      assert.equal(await within(exited, 30_000, "the tail's exit"), 0, stderr);
      assert.equal(
        stdout,
        `{"channel":"tail-test","message":{"message_id":"${b}","type":"b"}}\n` +
          `{"channel":"tail-test","message":{"message_id":"${c}","type":"c","x":[1,{"y":null}]}}\n`,
      );
    } finally {
      child.kill("SIGKILL");
    }
  });
});
