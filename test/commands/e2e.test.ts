/**
 * Commands end to end with real processes: a server process, client processes using the
 * SDK over WebSocket and over long-polling, a TCP relay between them to cut the network,
 * and the sender speaking the HTTP API.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, token } from "../helpers/server.js";
import { NodeProcess, Relay, portOf, startClientProcess, startServerProcess, type Event } from "./processes.js";

const TRANSPORTS = ["websocket", "longpoll"] as const;

for (const transport of TRANSPORTS) {
  describe(`commands end to end over ${transport}`, () => {
    let server: NodeProcess;
    let relay: Relay;
    let base: string;
    let publisher: string;
    let botToken: string;
    const clients: NodeProcess[] = [];
    let n = 0;

    before(async () => {
      const started = await startServerProcess({ commands: { leaseMs: 60_000 } });
      server = started.proc;
      relay = await Relay.start(portOf(started.url));
      base = `${started.url}/test`;
      publisher = await token("app", { role: "publisher" });
      botToken = await token("bot", { addresses: ["bot:*", "software_dev.buildbot:*"] });
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.kill()));
      await relay.close();
      await server.kill("SIGTERM");
    });

    /** A client process on a fresh address, through the relay, ready to serve. */
    async function client(address = `bot:${transport}-${++n}`, tokenText = botToken): Promise<{ proc: NodeProcess; address: string }> {
      const proc = startClientProcess({ url: relay.url, token: tokenText, address, transport });
      clients.push(proc);
      await proc.waitFor((e) => e.event === "ready" || e.event === "refused", "ready");
      return { proc, address };
    }

    const send = async (address: string, method: string, args: unknown[] = [], extra: Record<string, unknown> = {}) => {
      const res = await request(`${base}/commands`, { token: publisher, body: { address, method, args, ...extra } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { id: string; state: string };
    };
    const outcome = async (id: string) => {
      const res = await request(`${base}/commands/${id}?wait=20`, { method: "GET", token: publisher });
      assert.equal(res.status, 200);
      return res.body;
    };
    const runsOf = (proc: NodeProcess, id: string) => proc.count((e: Event) => e.event === "run" && e.id === id);

    it("delivers commands sent while the client was offline once it connects, and returns results", async () => {
      const address = `software_dev.buildbot:${transport}`;
      const a = await send(address, "add", [2, 3]);
      const b = await send(address, "fail", ["no layout"]);
      const c = await send(address, "nothing");
      const { proc } = await client(address);
      const [ra, rb, rc] = await Promise.all([outcome(a.id), outcome(b.id), outcome(c.id)]);
      assert.equal(ra.state, "succeeded");
      assert.equal(ra.result, 5);
      assert.equal(ra.attempts, 1);
      assert.ok(ra.delivered_at !== null && ra.finished_at !== null && ra.delivered_at <= ra.finished_at);
      if (transport === "websocket") {
        assert.ok(ra.started_at !== null && ra.delivered_at <= ra.started_at && ra.started_at <= ra.finished_at);
      } else {
        // Over long-polling an instant method is not reported as running (one request less).
        assert.equal(ra.started_at, null);
      }
      assert.equal(rb.state, "failed");
      assert.deepEqual(rb.error, { message: "no layout", code: "E_FAIL", data: { detail: 1 } });
      assert.equal(rc.state, "failed");
      assert.deepEqual(rc.error, { message: `No method nothing at ${address}.`, code: "METHOD_NOT_FOUND" });
      assert.equal(runsOf(proc, a.id), 1);
    });

    it("runs a command once when the connection drops mid-run and it is delivered again", async () => {
      const { proc, address } = await client();
      const cmd = await send(address, "hold", ["k1"]);
      await proc.waitFor((e) => e.event === "run" && e.id === cmd.id, "the run");
      const connections = proc.count((e) => e.event === "connected");
      relay.cut();
      if (transport === "websocket") {
        // The server released the claim when the socket closed: the reconnected client gets it again.
        await proc.waitFor((e) => e.event === "disconnected", "the disconnection");
        await proc.waitFor(
          (e) => e.event === "connected" && proc.count((x) => x.event === "connected") > connections,
          "the reconnection",
        );
        const seen = await request(`${base}/commands/${cmd.id}`, { method: "GET", token: publisher });
        assert.ok(seen.body.attempts >= 1);
      }
      proc.tell("release k1");
      const final = await outcome(cmd.id);
      assert.equal(final.state, "succeeded");
      assert.equal(final.result, "released k1");
      assert.equal(runsOf(proc, cmd.id), 1, "the method body ran once");
      if (transport === "websocket") assert.equal(final.attempts, 2, "it was delivered again after the reconnection");
    });

    it("never lets two clients of one address run the same command", async () => {
      const address = `bot:${transport}-shared`;
      const one = await client(address);
      const two = await client(address);
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push((await send(address, "add", [i, 1])).id);
      const results = await Promise.all(ids.map(outcome));
      assert.deepEqual(results.map((r) => [r.state, r.result]), ids.map((_, i) => ["succeeded", i + 1]));
      for (const id of ids) assert.equal(runsOf(one.proc, id) + runsOf(two.proc, id), 1, `command ${id} ran once`);
    });

    it("stops a running command on cancel, and refuses its late result", async () => {
      const { proc, address } = await client();
      const cmd = await send(address, "hold", ["k2"]);
      await proc.waitFor((e) => e.event === "run" && e.id === cmd.id, "the run");
      const cancelled = await request(`${base}/commands/${cmd.id}/cancel`, { token: publisher, body: {} });
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.state, "cancelled");
      await proc.waitFor((e) => e.event === "cancelled" && e.id === cmd.id, "the cancel to reach the client");
      const final = await outcome(cmd.id);
      assert.equal(final.state, "cancelled");
      assert.equal(final.error, null, "the client's late failure did not replace the cancel");
    });

    it("expires a command whose deadline passes while it runs", async () => {
      const { proc, address } = await client();
      const cmd = await send(address, "hold", ["k3"], { timeout: 0.3 });
      await proc.waitFor((e) => e.event === "run" && e.id === cmd.id, "the run");
      const final = await outcome(cmd.id);
      assert.equal(final.state, "expired");
      await proc.waitFor((e) => e.event === "cancelled" && e.id === cmd.id, "the expiry to reach the client");
    });

    it("refuses a client whose token does not grant the address", async () => {
      const other = await token("intruder", { addresses: ["bot:mine"] });
      const { proc } = await client("software_dev.buildbot:7", other);
      const refused = await proc.waitFor((e) => e.event === "refused", "the refusal");
      assert.equal(refused.code, "TIDINGS_ERR_ADDRESS_FORBIDDEN");
    });
  });
}
