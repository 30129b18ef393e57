/**
 * Which transport the SDK comes back on. A WebSocket that worked keeps its place when a few
 * handshakes fail while the server answers (a reconnect storm); one that never worked on
 * this client is left at the first failure (a proxy that strips upgrades).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { testClient, until } from "./helpers.js";

/** A TCP relay that refuses the next `refuse` WebSocket handshakes by closing their sockets. */
class UpgradeGate {
  refuse = 0;
  refused = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(target: number) {
    this.server = createServer((inbound) => {
      this.track(inbound);
      inbound.once("data", (first: Buffer) => {
        if (this.refuse > 0 && /^upgrade: *websocket/im.test(first.toString("latin1"))) {
          this.refuse--;
          this.refused++;
          inbound.destroy();
          return;
        }
        const outbound = this.track(connect(target, "127.0.0.1"));
        outbound.write(first);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        inbound.on("close", () => outbound.destroy());
        outbound.on("close", () => inbound.destroy());
      });
    });
  }

  static async start(target: number): Promise<UpgradeGate> {
    const gate = new UpgradeGate(target);
    await new Promise<void>((resolve) => gate.server.listen(0, "127.0.0.1", resolve));
    return gate;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops every connection, as a restart or a network failure does. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Socket): Socket {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    s.on("error", () => s.destroy());
    return s;
  }
}

describe("the SDK's transport after failed WebSocket handshakes", () => {
  let server: TidingsServer;
  let gate: UpgradeGate;
  before(async () => {
    server = await startServer();
    gate = await UpgradeGate.start(Number(new URL(server.url).port));
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
      gate.refused = 0;
      gate.refuse = 2;
      gate.cut();
      await until(() => client.log.filter((e) => e.event === "connected").length >= 2, "the reconnection").catch((e: Error) => {
        throw new Error(`${e.message}; events: ${JSON.stringify(client.log)}`);
      });
      assert.equal(gate.refused, 2, "two handshakes were refused meanwhile");
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
    gate.refused = 0;
    gate.refuse = Number.POSITIVE_INFINITY;
    const client = testClient({ url: gate.url, token: await token("7") });
    try {
      client.subscribe("user:7", () => {});
      await until(() => client.connected, "a connection");
      assert.equal(client.transport, "sse");
      assert.equal(gate.refused, 1);
    } finally {
      await client.close();
      gate.refuse = 0;
    }
  });
});
