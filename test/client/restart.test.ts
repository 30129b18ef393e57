/**
 * Server restarts on SQLite (the process killed with -9, started again on the same file):
 * a subscriber on every transport resumes from its cursor without loss or duplicate, and a
 * worker process written like the README's example stays alive through the outage and runs
 * the commands sent meanwhile.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { BusMessage } from "../../src/client/index.js";
import { request, token } from "../helpers/server.js";
import { tempDir } from "../commands/helpers.js";
import { NodeProcess, Relay, portOf, startServerProcess } from "../commands/processes.js";
import { TRANSPORTS, testClient, until } from "./helpers.js";

const tmp = tempDir("client-restart");
after(() => tmp.remove());
const WORKER = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url));

/** A server process on a SQLite file behind a relay that can be pointed at its successor. */
async function restartable(name: string) {
  const options = { store: `sqlite:${join(tmp.dir, `${name}.db`)}`, accessRules: [{ channels: "room-*" }] };
  const procs: NodeProcess[] = [];
  const first = await startServerProcess(options);
  procs.push(first.proc);
  const relay = await Relay.start(portOf(first.url));
  let direct = first.url;
  return {
    relay,
    get direct() {
      return direct;
    },
    /** Kills the server (-9) and starts another on the same file; the relay still points at the dead one. */
    async kill(): Promise<void> {
      await procs[procs.length - 1]!.kill("SIGKILL");
    },
    async start(): Promise<void> {
      const next = await startServerProcess(options);
      procs.push(next.proc);
      direct = next.url;
      relay.target = portOf(next.url);
    },
    async close(): Promise<void> {
      await Promise.all(procs.map((p) => p.kill()));
      await relay.close();
    },
  };
}

for (const transport of TRANSPORTS) {
  describe(`a subscriber over ${transport} across a server restart`, () => {
    it("resumes from its cursor: every message once, in order", async () => {
      const srv = await restartable(`sub-${transport}`);
      const publisher = await token("app", { role: "publisher" });
      const publish = async (n: number): Promise<string> => {
        const res = await request(`${srv.direct}/test/publish`, { token: publisher, body: { channel: "room-r", message: { type: "n", n } } });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.message_id as string;
      };
      const client = testClient({ url: srv.relay.url, token: await token("7"), transports: [transport] });
      try {
        const got: BusMessage[] = [];
        await client.subscribe("room-r", (m) => got.push(m)).ready;
        const ids: string[] = [];
        for (let n = 0; n < 5; n++) ids.push(await publish(n));
        await until(() => got.length >= 5, "the first five");

        await srv.kill();
        await until(() => client.log.some((e) => e.event === "disconnected"), "the disconnect");
        await srv.start();
        // Published while the client is still away: it must fetch these from its cursor.
        for (let n = 5; n < 10; n++) ids.push(await publish(n));
        await until(() => client.connected, "the reconnect");
        for (let n = 10; n < 15; n++) ids.push(await publish(n));
        await until(() => got.length >= 15, "all fifteen", 15_000);

        assert.deepEqual(got.map((m) => m.message_id), ids, "every message once, in log order");
        assert.deepEqual(got.map((m) => m.n), [...Array(15).keys()]);
        assert.ok(client.log.some((e) => e.event === "reconnecting"));
        assert.deepEqual(client.log.filter((e) => e.event === "gap"), []);
      } finally {
        await client.close();
        await srv.close();
      }
    });
  });
}

const workers: Array<{ api: string; transport: string }> = [
  { api: "connect", transport: "websocket" },
  { api: "createClient", transport: "websocket" },
  { api: "createClient", transport: "longpoll" },
];
for (const { api, transport } of workers) {
  describe(`a worker process (${api}, ${transport}) across a server restart`, () => {
    it("stays alive while the server is down and runs the commands sent meanwhile", async () => {
      const srv = await restartable(`worker-${api}-${transport}`);
      const worker = new NodeProcess(
        spawn(process.execPath, ["--import", "tsx", WORKER], {
          env: {
            ...process.env,
            TIDINGS_TEST_URL: srv.relay.url,
            TIDINGS_TEST_TOKEN: await token("bot", { addresses: ["bot:*"] }),
            TIDINGS_TEST_API: api,
            TIDINGS_TEST_TRANSPORT: transport,
          },
          stdio: ["ignore", "pipe", "pipe"],
        }),
      );
      const publisher = await token("app", { role: "publisher" });
      const send = async (a: number, b: number): Promise<string> => {
        const res = await request(`${srv.direct}/test/commands`, { token: publisher, body: { address: "bot:1", method: "add", args: [a, b] } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.id as string;
      };
      const result = async (id: string) =>
        (await request(`${srv.direct}/test/commands/${id}?wait=20`, { method: "GET", token: publisher })).body;
      try {
        await worker.waitFor((e) => e.event === "ready", "ready");
        assert.equal((await result(await send(1, 1))).result, 2);

        await srv.kill();
        // Several failed reconnects in a row, each followed by a wait: the process lives through them.
        // (Over long-polling the commands have their own HTTP loop, which reports each failed claim.)
        const retry = api === "connect" ? "disconnected" : transport === "longpoll" ? "error" : "reconnecting";
        const before = worker.count((e) => e.event === retry);
        await until(() => worker.count((e) => e.event === retry) >= before + 3 || worker.child.exitCode !== null, "failed reconnects");
        assert.equal(worker.child.exitCode, null, "the worker is still running while the server is down");

        await srv.start();
        const sent = [await send(2, 3), await send(40, 2)];
        const done = await Promise.all(sent.map(result));
        assert.deepEqual(
          done.map((c) => [c.state, c.result]),
          [
            ["succeeded", 5],
            ["succeeded", 42],
          ],
        );
        assert.equal(worker.child.exitCode, null);
      } finally {
        await worker.kill();
        await srv.close();
      }
    });
  });
}
