/** The SDK's command runner: one run per command id whatever the deliveries, and what it answers. */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { CommandRunner, type CommandContext, type Outcome } from "../../src/client/runner.js";
import type { CommandDelivery } from "../../src/protocol/commands.js";

function recorder(): { sent: Array<[string, string, Outcome?]>; next: () => Promise<void>; runner: (o?: { startDelayMs?: number }) => CommandRunner } {
  const sent: Array<[string, string, Outcome?]> = [];
  let wake: (() => void) | null = null;
  return {
    sent,
    next: () => new Promise<void>((resolve) => (wake = resolve)),
    runner: (o = {}) =>
      new CommandRunner(
        {
          started: (id) => {
            sent.push(["started", id]);
            wake?.();
          },
          result: (id, outcome) => {
            sent.push(["result", id, outcome]);
            wake?.();
          },
        },
        o,
      ),
  };
}

const delivery = (id: string, method: string, args: unknown[] = [], attempt = 1): CommandDelivery => ({
  id,
  address: "bot:1",
  method,
  args,
  attempt,
  deadline: null,
});

describe("command runner", () => {
  // The runner's timers are unref'd: a client's open connection keeps its process alive. Here, this does.
  const alive = setInterval(() => {}, 60_000);
  after(() => clearInterval(alive));

  it("runs a command once however often it is delivered, and re-sends its outcome", async () => {
    const r = recorder();
    const runner = r.runner();
    let runs = 0;
    let finish!: (v: number) => void;
    runner.expose("bot:1", {
      slow(this: CommandContext, n: number) {
        runs++;
        assert.equal(this.id, "c1");
        assert.equal(this.attempt, 1);
        return new Promise<number>((resolve) => (finish = (v) => resolve(v + n)));
      },
    });
    runner.deliver(delivery("c1", "slow", [1]));
    runner.deliver(delivery("c1", "slow", [1], 2)); // delivered again while running
    assert.deepEqual(r.sent, [
      ["started", "c1"],
      ["started", "c1"],
    ]);
    const done = r.next();
    finish(41);
    await done;
    assert.deepEqual(r.sent.at(-1), ["result", "c1", { result: 42 }]);
    runner.deliver(delivery("c1", "slow", [1], 3)); // delivered again after it ended
    assert.deepEqual(r.sent.at(-1), ["result", "c1", { result: 42 }]);
    assert.equal(runs, 1);
  });

  it("turns errors, unknown methods and unserialisable values into error outcomes", async () => {
    const r = recorder();
    const runner = r.runner();
    runner.expose("bot:1", {
      boom() {
        throw Object.assign(new Error("no layout"), { code: "E_LAYOUT", data: { step: 2 } });
      },
      big() {
        return 10n;
      },
      nothing() {},
    });
    for (const [id, method] of [["a", "boom"], ["b", "missing"], ["c", "big"], ["d", "nothing"], ["e", "toString"]] as const) {
      const done = r.next();
      runner.deliver(delivery(id, method));
      if (r.sent.at(-1)?.[0] !== "result") await done;
    }
    const results = r.sent.filter((s) => s[0] === "result").map((s) => [s[1], s[2]]);
    assert.deepEqual(results, [
      ["a", { error: { message: "no layout", code: "E_LAYOUT", data: { step: 2 } } }],
      ["b", { error: { message: "No method missing at bot:1.", code: "METHOD_NOT_FOUND" } }],
      ["c", { error: { message: "Do not know how to serialize a BigInt" } }],
      ["d", { result: null }],
      ["e", { error: { message: "No method toString at bot:1.", code: "METHOD_NOT_FOUND" } }],
    ]);
  });

  it("aborts the method's signal on cancel", async () => {
    const r = recorder();
    const runner = r.runner();
    runner.expose("bot:1", {
      wait(this: CommandContext) {
        return new Promise((_, reject) => this.signal.addEventListener("abort", () => reject(this.signal.reason)));
      },
    });
    runner.deliver(delivery("w", "wait"));
    const done = r.next();
    runner.cancel("w", "expired");
    await done;
    assert.deepEqual(r.sent.at(-1), ["result", "w", { error: { message: "The command was expired." } }]);
  });

  it("reports a start only for methods still running after startDelayMs", async () => {
    const r = recorder();
    const runner = r.runner({ startDelayMs: 5 });
    let release!: () => void;
    runner.expose("bot:1", {
      quick: () => 1,
      long: () => new Promise<void>((resolve) => (release = resolve)),
    });
    const quick = r.next();
    runner.deliver(delivery("q", "quick"));
    await quick;
    assert.deepEqual(r.sent, [["result", "q", { result: 1 }]]);
    const started = r.next();
    runner.deliver(delivery("l", "long"));
    await started;
    assert.deepEqual(r.sent.at(-1), ["started", "l"]);
    const finished = r.next();
    release();
    await finished;
    assert.deepEqual(r.sent.at(-1), ["result", "l", { result: null }]);
  });

  it("replaces a result the server refuses with an error saying so, once", async () => {
    const r = recorder();
    const runner = r.runner();
    runner.expose("bot:1", { big: () => "x" });
    const done = r.next();
    runner.deliver(delivery("z", "big"));
    await done;
    runner.refused("z", "A command's result may have at most 1 bytes of JSON.", "TIDINGS_ERR_COMMAND_TOO_LARGE");
    runner.refused("z", "again", "TIDINGS_ERR_COMMAND_INVALID");
    assert.deepEqual(r.sent, [
      ["started", "z"],
      ["result", "z", { result: "x" }],
      [
        "result",
        "z",
        { error: { message: "The result was refused: A command's result may have at most 1 bytes of JSON.", code: "TIDINGS_ERR_COMMAND_TOO_LARGE" } },
      ],
    ]);
  });
});
