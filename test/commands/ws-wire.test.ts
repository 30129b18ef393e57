/**
 * The command frames of docs/protocol/commands.md, spoken raw over a WebSocket and
 * compared as exact JSON.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";

type Frame = Record<string, unknown>;

/** A raw rohrpost socket: frames in arrival order, awaited by predicate. */
class RawSocket {
  readonly frames: Frame[] = [];
  private readonly waiters = new Set<() => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      for (const w of [...this.waiters]) w();
    });
  }

  static async open(url: string): Promise<RawSocket> {
    const ws = new WebSocket(url);
    const s = new RawSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return s;
  }

  send(frame: Frame): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first frame not yet taken for which `match` holds; it is taken. */
  next(match: (f: Frame) => boolean): Promise<Frame> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const i = this.frames.findIndex(match);
        if (i < 0) return false;
        const [f] = this.frames.splice(i, 1);
        this.waiters.delete(check);
        resolve(f!);
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Sends a request and resolves with its reply (same id and type). */
  async ask(frame: Frame): Promise<Frame> {
    this.send(frame);
    return this.next((f) => f.id === frame.id && f.type === frame.type);
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.close();
    });
  }
}

describe("command frames over WebSocket", () => {
  let server: TidingsServer;
  let wsBase: string;
  let bot: string;
  const sockets: RawSocket[] = [];

  before(async () => {
    server = await startServer({ commands: { maxInFlight: 2, maxResultBytes: 100 } });
    wsBase = `${server.url.replace("http", "ws")}/test/ws`;
    bot = await token("bot", { addresses: ["bot:*"] });
  });
  after(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await server.close();
  });

  async function registered(address: string, t = bot): Promise<RawSocket> {
    const s = await RawSocket.open(`${wsBase}?token=${t}`);
    sockets.push(s);
    const reply = await s.ask({ id: 1, type: "command-register", data: { address } });
    assert.deepEqual(reply, { id: 1, type: "command-register", data: { address } });
    return s;
  }

  const send = (address: string, method: string, args: unknown[] = []) => server.bus.commands.send("test", address, method, args);
  const isCommand = (id: string) => (f: Frame) => f.type === "command" && f.id === id;

  it("pushes a command, takes started and result frames, and records the outcome", async () => {
    const s = await registered("bot:wire");
    const { command, outcome } = await send("bot:wire", "add", [2, 3]);
    const pushed = await s.next(isCommand(command.id));
    assert.deepEqual(pushed, {
      id: command.id,
      type: "command",
      data: {
        id: command.id,
        address: "bot:wire",
        method: "add",
        args: [2, 3],
        attempt: 1,
        deadline: new Date(command.deadline!).toISOString(),
      },
    });
    assert.deepEqual(await s.ask({ id: command.id, type: "command-started" }), {
      id: command.id,
      type: "command-started",
      data: { state: "running" },
    });
    assert.deepEqual(await s.ask({ id: command.id, type: "command-result", data: { result: 5 } }), {
      id: command.id,
      type: "command-result",
      data: { state: "succeeded" },
    });
    const final = await outcome;
    assert.equal(final.state, "succeeded");
    assert.equal(final.result, "5");
    assert.equal(final.claimedBy, null);
  });

  it("answers bad results with error frames and changes nothing", async () => {
    const s = await registered("bot:badwire");
    const other = await registered("bot:elsewhere");
    const { command } = await send("bot:badwire", "x");
    await s.next(isCommand(command.id));
    const before = await server.bus.commands.get("test", command.id);

    assert.deepEqual(await s.ask({ id: "nope", type: "command-result", data: { result: 1 } }), {
      id: "nope",
      type: "command-result",
      error: 'No command "nope".',
      data: { code: "TIDINGS_ERR_COMMAND_NOT_FOUND", id: "nope" },
    });
    assert.deepEqual(await other.ask({ id: command.id, type: "command-result", data: { result: 1 } }), {
      id: command.id,
      type: "command-result",
      error: `Command ${command.id} is not held by this client.`,
      data: { code: "TIDINGS_ERR_COMMAND_NOT_YOURS", id: command.id },
    });
    assert.deepEqual(await s.ask({ id: command.id, type: "command-result", data: { outcome: 1 } }), {
      id: command.id,
      type: "command-result",
      error: 'A result must have exactly one of "result" and "error".',
      data: { code: "TIDINGS_ERR_COMMAND_INVALID" },
    });
    assert.deepEqual(await s.ask({ id: command.id, type: "command-result", data: { result: "z".repeat(200) } }), {
      id: command.id,
      type: "command-result",
      error: "A command's result may have at most 100 bytes of JSON.",
      data: { code: "TIDINGS_ERR_COMMAND_TOO_LARGE", maxBytes: 100 },
    });
    const numeric = await s.ask({ id: 7, type: "command-result", data: { result: 1 } });
    assert.equal((numeric.data as Frame).code, "TIDINGS_ERR_COMMAND_INVALID");
    assert.deepEqual(await server.bus.commands.get("test", command.id), before);

    assert.deepEqual(await s.ask({ id: command.id, type: "command-result", data: { error: { message: "no", code: "E" } } }), {
      id: command.id,
      type: "command-result",
      data: { state: "failed" },
    });
    assert.deepEqual(await s.ask({ id: command.id, type: "command-result", data: { result: 1 } }), {
      id: command.id,
      type: "command-result",
      error: `Command ${command.id} is already failed.`,
      data: { code: "TIDINGS_ERR_COMMAND_FINAL", id: command.id, state: "failed" },
    });
  });

  it("registers only addresses the token grants, and only when authenticated", async () => {
    const s = await RawSocket.open(`${wsBase}?token=${bot}`);
    sockets.push(s);
    assert.deepEqual(await s.ask({ id: 2, type: "command-register", data: { address: "software_dev.buildbot:5" } }), {
      id: 2,
      type: "command-register",
      error: "Not allowed to serve address software_dev.buildbot:5.",
      data: { code: "TIDINGS_ERR_ADDRESS_FORBIDDEN", address: "software_dev.buildbot:5" },
    });
    const bad = await s.ask({ id: 3, type: "command-register", data: { address: "with space" } });
    assert.equal((bad.data as Frame).code, "TIDINGS_ERR_ADDRESS_INVALID");
    const anonymous = await RawSocket.open(wsBase);
    sockets.push(anonymous);
    const refused = await anonymous.ask({ id: 4, type: "command-register", data: { address: "bot:1" } });
    assert.equal((refused.data as Frame).code, "TIDINGS_ERR_AUTH_REQUIRED");
  });

  it("tells the client when a command it holds is cancelled", async () => {
    const s = await registered("bot:cancelwire");
    const { command } = await send("bot:cancelwire", "x");
    await s.next(isCommand(command.id));
    await server.bus.commands.cancel("test", command.id);
    assert.deepEqual(await s.next((f) => f.type === "command-cancel"), {
      id: command.id,
      type: "command-cancel",
      data: { state: "cancelled" },
    });
  });

  it("holds at most maxInFlight commands per connection, and takes more as they end", async () => {
    const s = await registered("bot:inflight");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await send("bot:inflight", "x", [i])).command.id);
    await s.next(isCommand(ids[0]!));
    await s.next(isCommand(ids[1]!));
    assert.equal((await server.bus.commands.get("test", ids[2]!)).state, "pending", "the third waits");
    await s.ask({ id: ids[0]!, type: "command-result", data: { result: null } });
    const third = await s.next(isCommand(ids[2]!));
    assert.equal((third.data as Frame).attempt, 1);
  });

  it("notices a command it holds ended without a wake-up, and frees its place", async () => {
    const quick = await startServer({ commands: { maxInFlight: 1, leaseMs: 300 } });
    try {
      const s = await RawSocket.open(`${quick.url.replace("http", "ws")}/test/ws?token=${bot}`);
      sockets.push(s);
      await s.ask({ id: 1, type: "command-register", data: { address: "bot:quiet" } });
      const first = await quick.bus.commands.send("test", "bot:quiet", "x");
      const second = await quick.bus.commands.send("test", "bot:quiet", "y");
      await s.next(isCommand(first.command.id));
      // Cancelled behind the service's back: no command-final message is published.
      await quick.bus.store.finishCommand("test", first.command.id, { state: "cancelled" }, null, Date.now());
      assert.deepEqual(await s.next((f) => f.type === "command-cancel"), {
        id: first.command.id,
        type: "command-cancel",
        data: { state: "cancelled" },
      });
      await s.next(isCommand(second.command.id));
    } finally {
      await quick.close();
    }
  });

  it("gives back what a closed connection held, to the next client, with the same id", async () => {
    const first = await registered("bot:handover");
    const { command } = await send("bot:handover", "x");
    await first.next(isCommand(command.id));
    await first.ask({ id: command.id, type: "command-started" });
    await first.close();
    const second = await registered("bot:handover");
    const again = await second.next(isCommand(command.id));
    assert.equal((again.data as Frame).attempt, 2);
    const c = await server.bus.commands.get("test", command.id);
    assert.equal(c.state, "delivered", "released to pending, then delivered again");
    assert.equal(c.attempts, 2);
    assert.ok(c.startedAt !== null, "when it first started is kept");
  });
});
