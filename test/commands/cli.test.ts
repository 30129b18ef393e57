/** `tidings command send|get|list|cancel` against a `tidings serve` process and a client process. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, serve, tempDir, type Served } from "../cli/cli-process.js";
import { TEST_SECRET, token } from "../helpers/server.js";
import { portOf, Relay, startClientProcess, type NodeProcess } from "./processes.js";

describe("tidings command", () => {
  const dir = tempDir();
  let server: Served | undefined;
  let client: NodeProcess | undefined;
  let remote: string[] = [];

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test", "--secret", TEST_SECRET]);
    remote = ["--url", server.url, "--db", "test", "--secret", TEST_SECRET];
    client = startClientProcess({
      url: server.url,
      token: await token("bot", { addresses: ["bot:cli"] }),
      address: "bot:cli",
      transport: "websocket",
    });
    await client.waitFor((e) => e.event === "ready", "ready");
  });
  after(async () => {
    await client?.kill();
    await server?.stop("SIGKILL");
    dir.remove();
  });

  it("sends, waits, and prints the state and the result", async () => {
    const res = await runCli(["command", "send", ...remote, "bot:cli", "add", "2", "3", "--wait", "10s"]);
    assert.equal(res.code, 0, res.stderr);
    const [first, second, rest] = res.stdout.split("\n");
    assert.match(first!, /^[0-9a-f-]{36} {2}succeeded {2}bot:cli add\(2, 3\) {2}attempts=1$/);
    assert.equal(second, "result: 5");
    assert.equal(rest, "");
  });

  it("exits 1 with the client's error when the command failed", async () => {
    const res = await runCli(["command", "send", ...remote, "bot:cli", "fail", "oops", "--wait"]);
    assert.equal(res.code, 1);
    assert.match(res.stdout, /  failed  bot:cli fail\("oops"\)  attempts=1\nerror: oops \(E_FAIL\)\n$/);
  });

  it("gets, lists and cancels a command nobody serves", async () => {
    const sent = await runCli(["command", "send", ...remote, "bot:nobody", "reconfigure", "--args", '[{"layout":2}]', "--json"]);
    assert.equal(sent.code, 0, sent.stderr);
    const c = JSON.parse(sent.stdout) as { id: string; state: string; args: unknown[] };
    assert.equal(c.state, "pending");
    assert.deepEqual(c.args, [{ layout: 2 }]);

    const waited = await runCli(["command", "get", ...remote, c.id, "--wait", "0.1"]);
    assert.equal(waited.code, 3, "no outcome when the wait ended: exit 3, as --help says");
    assert.equal(waited.stdout, `${c.id}  pending  bot:nobody reconfigure({"layout":2})  attempts=0\n`);

    const cancelled = await runCli(["command", "cancel", ...remote, c.id]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.stdout, `${c.id}  cancelled  bot:nobody reconfigure({"layout":2})  attempts=0\n`);
    const again = await runCli(["command", "cancel", ...remote, c.id]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `tidings: TIDINGS_ERR_COMMAND_FINAL: Command ${c.id} is already cancelled.\n`);

    const list = await runCli(["command", "list", ...remote, "--address", "bot:nobody", "--state", "cancelled"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${c.id}  cancelled  \\d{4}-\\d\\d-\\d\\dT[^ ]+Z  bot:nobody reconfigure\\n$`));
    const missing = await runCli(["command", "get", ...remote, "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /TIDINGS_ERR_COMMAND_NOT_FOUND/);
  });

  it("fails with the server's code when the token may not send commands", async () => {
    const subscriber = await token("7");
    const res = await runCli(["command", "send", ...remote, "--token", subscriber, "bot:cli", "add", "1", "1"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /TIDINGS_ERR_ROLE_FORBIDDEN/);
    const usage = await runCli(["command", "send", ...remote, "bot:cli", "add", "1", "--args", "[1]"]);
    assert.equal(usage.code, 2);
  });

  it("send --wait outlives a server restart: it prints the outcome the restarted server got", async () => {
    const own = tempDir();
    const args = ["--data-dir", own.path, "--store", `sqlite:${join(own.path, "t.db")}`, "--databases", "test", "--secret", TEST_SECRET];
    let first: Served | undefined = await serve(args);
    let second: Served | undefined;
    let worker: NodeProcess | undefined;
    const relay = await Relay.start(portOf(first.url));
    try {
      const waiting = runCli(["command", "send", "--url", relay.url, "--db", "test", "--secret", TEST_SECRET, "bot:later", "add", "20", "22", "--wait", "60s"], {
        timeoutMs: 90_000,
      });
      const admin = await token("ops", { role: "admin" });
      const sent = async (): Promise<boolean> => {
        const res = await fetch(`${first!.url}/test/commands?address=bot:later`, { headers: { authorization: `Bearer ${admin}` } });
        return ((await res.json()) as { commands: unknown[] }).commands.length === 1;
      };
      for (const end = Date.now() + 30_000; !(await sent()); ) {
        if (Date.now() > end) throw new Error("the CLI's command never reached the server");
        await new Promise((r) => setTimeout(r, 50));
      }
      await first.stop("SIGKILL");
      first = undefined;
      second = await serve(args);
      relay.target = portOf(second.url);
      worker = startClientProcess({ url: second.url, token: await token("bot", { addresses: ["bot:later"] }), address: "bot:later", transport: "websocket" });

      const res = await waiting;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /^[0-9a-f-]{36} {2}succeeded {2}bot:later add\(20, 22\) {2}attempts=1\nresult: 42\n$/);
      assert.match(res.stderr, /retrying in \d+ ms/, "the wait went through the restart");
    } finally {
      await worker?.kill();
      await first?.stop("SIGKILL");
      await second?.stop("SIGKILL");
      await relay.close();
      own.remove();
    }
  });
});
