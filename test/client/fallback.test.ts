/**
 * Which transport the SDK comes back on. A WebSocket that worked keeps its place when a few
 * handshakes fail while the server answers (a reconnect storm); one that never worked on
 * this client is left at the first failure (a proxy that strips upgrades).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { portOf, Relay } from "../commands/processes.js";
import { testClient, until } from "./helpers.js";

describe("the SDK's transport after failed WebSocket handshakes", () => {
  let server: TidingsServer;
  let gate: Relay;
  before(async () => {
    server = await startServer();
    gate = await Relay.start(portOf(server.url));
  });
  after(async () => {
    await gate.close();
    await server.close();
  });

  it("comes back on WebSocket when a few handshakes fail after a drop, while /healthz answers", async () => {
    const client = testClient({ url: gate.url, token: await token("7") });
    try {
      client.subscribe("user:7", () => {});
      await until(() => client.log.some((e) => e.event === "connected"), "the first connection");
      assert.equal(client.transport, "websocket");
      gate.refusedUpgrades = 0;
      gate.refuseUpgrades = 2;
      gate.cut();
      await until(() => client.log.filter((e) => e.event === "connected").length >= 2, "the reconnection").catch((e: Error) => {
        throw new Error(`${e.message}; events: ${JSON.stringify(client.log)}`);
      });
      assert.equal(gate.refusedUpgrades, 2, "two handshakes were refused meanwhile");
      assert.equal(client.transport, "websocket");
      assert.deepEqual(
        client.log.filter((e) => e.event === "connected").map((e) => (e.payload as { transport: string }).transport),
        ["websocket", "websocket"],
      );
    } finally {
      await client.close();
    }
  });

  it("moves to SSE at the first refused handshake when WebSocket never worked for this client", async () => {
    gate.refusedUpgrades = 0;
    gate.refuseUpgrades = Number.POSITIVE_INFINITY;
    const client = testClient({ url: gate.url, token: await token("7") });
    try {
      client.subscribe("user:7", () => {});
      await until(() => client.connected, "a connection");
      assert.equal(client.transport, "sse");
      assert.equal(gate.refusedUpgrades, 1);
    } finally {
      await client.close();
      gate.refuseUpgrades = 0;
    }
  });
});
