/**
 * A server on SQLite killed (-9) with commands pending and running, then started again on
 * the same file: nothing is lost, the running command is delivered again to its client
 * (which runs it once), the pending one waits for its client.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { request, token } from "../helpers/server.js";
import { tempDir } from "./helpers.js";
import { NodeProcess, Relay, portOf, startClientProcess, startServerProcess } from "./processes.js";

const tmp = tempDir("commands-restart");
after(() => tmp.remove());

for (const transport of ["websocket", "longpoll"] as const) {
  describe(`a server restart on SQLite, clients over ${transport}`, () => {
    const procs: NodeProcess[] = [];
    let relay: Relay | undefined;
    after(async () => {
      await Promise.all(procs.map((p) => p.kill()));
      await relay?.close();
    });

    it("keeps pending and running commands, and the running one runs once", async () => {
      const options = { store: `sqlite:${join(tmp.dir, `${transport}.db`)}`, commands: { leaseMs: 60_000 } };
      const first = await startServerProcess(options);
      procs.push(first.proc);
      relay = await Relay.start(portOf(first.url));
      const publisher = await token("app", { role: "publisher" });
      const bot = await token("bot", { addresses: ["bot:*"] });
      const send = async (address: string, method: string, args: unknown[]): Promise<string> => {
        const res = await request(`${relay!.url}/test/commands`, { token: publisher, body: { address, method, args } });
        assert.equal(res.status, 201);
        return res.body.id as string;
      };
      const get = async (id: string, wait = 0) =>
        (await request(`${relay!.url}/test/commands/${id}${wait ? `?wait=${wait}` : ""}`, { method: "GET", token: publisher })).body;

      const client = startClientProcess({ url: relay.url, token: bot, address: "bot:runner", transport });
      procs.push(client);
      await client.waitFor((e) => e.event === "ready", "ready");
      const running = await send("bot:runner", "hold", ["r"]);
      await client.waitFor((e) => e.event === "run" && e.id === running, "the run");
      const pending = await send("bot:later", "add", [40, 2]);
      assert.equal((await get(pending)).state, "pending");

      await first.proc.kill("SIGKILL");
      const second = await startServerProcess(options);
      procs.push(second.proc);
      relay.target = portOf(second.url);
      relay.cut();

      // The restarted server gave the dead connection's command back, and the reconnected
      // client got it again: its second attempt.
      client.tell("release r");
      const ran = await get(running, 20);
      assert.equal(ran.state, "succeeded");
      assert.equal(ran.result, "released r");
      assert.equal(ran.attempts, 2);
      assert.equal(client.count((e) => e.event === "run" && e.id === running), 1, "the method body ran once");

      assert.equal((await get(pending)).state, "pending", "the pending command survived");
      const later = startClientProcess({ url: relay.url, token: bot, address: "bot:later", transport });
      procs.push(later);
      const done = await get(pending, 20);
      assert.equal(done.state, "succeeded");
      assert.equal(done.result, 42);
      assert.equal(done.attempts, 1);
    });
  });
}
