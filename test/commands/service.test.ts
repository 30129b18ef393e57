/**
 * The command service on each store engine, in process: every state transition, the races
 * between outcomes, deadlines and cancels, two claimers, bad results, limits, the proxy.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { TidingsError } from "../../src/errors.js";
import type { TidingsBus as Bus } from "../../src/bus.js";
import type { CommandRecord } from "../../src/stores/store.js";
import { busOn, cleanShared, ENGINES, nextOn, recordChannel, sharedEngines, tempDir, withoutId } from "./helpers.js";

const DB = "test";

function code(e: unknown): string {
  assert.ok(e instanceof TidingsError, `expected a TidingsError, got ${String(e)}`);
  return e.code;
}

async function rejectsWith(p: Promise<unknown>, expected: string): Promise<TidingsError> {
  try {
    await p;
  } catch (e) {
    assert.equal(code(e), expected);
    return e as TidingsError;
  }
  assert.fail(`expected ${expected}, but it resolved`);
}

const tmp = tempDir("commands-service");
// The bus's timers are unref'd: in a real process a listening server keeps it alive while
// outcomes are awaited. This handle plays that part here.
const alive = setInterval(() => {}, 60_000);
// The shared engines too, when they run here (each in a namespace of this file's own).
const shared = await sharedEngines();
after(async () => {
  clearInterval(alive);
  tmp.remove();
  await cleanShared(shared);
});

for (const engine of [...ENGINES, ...shared]) {
  describe(`commands on ${engine}`, () => {
    let bus: Bus;
    before(async () => {
      bus = await busOn(engine, tmp.dir, {
        commands: { maxArgsBytes: 200, maxResultBytes: 300, maxOpenPerAddress: 3, leaseMs: 60_000 },
      });
    });
    after(() => bus.close());

    it("stores a pending command, wakes its address, and tracks it to success", async () => {
      const address = "software_dev.buildbot:5";
      const wake = nextOn(bus, DB, `command:${address}`);
      const before = Date.now();
      const sent = await bus.commands.send(DB, address, "triggerMasterRequests", [1, { a: "b" }]);
      const c = sent.command;
      assert.equal(sent.created, true);
      assert.equal(c.state, "pending");
      assert.equal(c.address, address);
      assert.equal(c.method, "triggerMasterRequests");
      assert.equal(c.args, '[1,{"a":"b"}]');
      assert.equal(c.attempts, 0);
      assert.ok(c.createdAt >= before);
      assert.equal(c.deadline, c.createdAt + 86_400_000, "the default deadline is a day");
      assert.deepEqual(withoutId(await wake), { type: "command", data: c.id });

      const outcome = sent.outcome;
      const [claimed] = await bus.commands.claim(DB, address, "conn-1", 10);
      assert.equal(claimed!.id, c.id);
      assert.equal(claimed!.state, "delivered");
      assert.equal(claimed!.attempts, 1);
      assert.equal(claimed!.claimedBy, "conn-1");
      assert.ok(claimed!.deliveredAt !== null && claimed!.leaseUntil === claimed!.deliveredAt + 60_000);

      const running = await bus.commands.start(DB, c.id, "conn-1");
      assert.equal(running.state, "running");
      assert.ok(running.startedAt !== null);

      const announced = nextOn(bus, DB, `command-outcome:${c.id}`);
      const done = await bus.commands.complete(DB, c.id, "conn-1", { state: "succeeded", result: '{"ok":true}' });
      assert.equal(done.state, "succeeded");
      assert.equal(done.result, '{"ok":true}');
      assert.equal(done.claimedBy, null);
      assert.ok(done.finishedAt !== null);
      assert.deepEqual(withoutId(await announced), { type: "command-outcome", data: { id: c.id, state: "succeeded" } });
      assert.deepEqual(await outcome, done);
      assert.deepEqual(await bus.commands.get(DB, c.id), done);
    });

    it("records a client's error as failed", async () => {
      const { command, outcome } = await bus.commands.send(DB, "bot:fail", "explode");
      await bus.commands.claim(DB, "bot:fail", "conn-1", 1);
      const failed = await bus.commands.complete(DB, command.id, "conn-1", {
        state: "failed",
        error: { message: "boom", code: "E_BOOM", data: { step: 2 } },
      });
      assert.equal(failed.state, "failed");
      assert.deepEqual(failed.error, { message: "boom", code: "E_BOOM", data: { step: 2 } });
      assert.equal((await outcome).state, "failed");
    });

    it("cancels a pending or running command once, and tells the address's clients", async () => {
      const address = "bot:cancel";
      const toClients = recordChannel(bus, DB, `command:${address}`);
      const a = await bus.commands.send(DB, address, "slow");
      const b = await bus.commands.send(DB, address, "slow");
      await bus.commands.claim(DB, address, "conn-1", 1);
      await bus.commands.start(DB, a.command.id, "conn-1");
      const cancelledRunning = await bus.commands.cancel(DB, a.command.id);
      const cancelledPending = await bus.commands.cancel(DB, b.command.id);
      assert.equal(cancelledRunning.state, "cancelled");
      assert.equal(cancelledPending.state, "cancelled");
      assert.equal((await a.outcome).state, "cancelled");
      assert.equal((await b.outcome).state, "cancelled");
      const e = await rejectsWith(bus.commands.cancel(DB, a.command.id), "TIDINGS_ERR_COMMAND_FINAL");
      assert.equal(e.status, 409);
      assert.deepEqual(e.details, { id: a.command.id, state: "cancelled" });
      await rejectsWith(bus.commands.cancel(DB, "no-such-id"), "TIDINGS_ERR_COMMAND_NOT_FOUND");
      assert.deepEqual(toClients.filter((m) => m.type === "command-final").map(withoutId), [
        { type: "command-final", data: { id: a.command.id, state: "cancelled" } },
        { type: "command-final", data: { id: b.command.id, state: "cancelled" } },
      ]);
    });

    it("expires a pending command nobody claimed, and a delivered one nobody started", async () => {
      const pending = await bus.commands.send(DB, "bot:nobody", "x", [], { timeoutMs: 30 });
      // Long enough to be claimed first on a loaded machine.
      const delivered = await bus.commands.send(DB, "bot:idle", "x", [], { timeoutMs: 250 });
      assert.equal((await bus.commands.claim(DB, "bot:idle", "conn-1", 1)).length, 1);
      const [p, d] = await Promise.all([pending.outcome, delivered.outcome]);
      assert.deepEqual([p.state, p.attempts, p.deliveredAt], ["expired", 0, null]);
      assert.deepEqual([d.state, d.attempts, d.startedAt, d.claimedBy], ["expired", 1, null, null]);
      assert.deepEqual(await bus.commands.claim(DB, "bot:nobody", "conn-1", 1), [], "an expired command is not delivered");
    });

    it("expires instead of delivering a command found past its deadline", async () => {
      // Stored straight into the store, as one whose deadline passed while no timer ran.
      const now = Date.now();
      const { command } = await bus.store.createCommand(DB, {
        id: "stale-1",
        address: "bot:stale",
        method: "x",
        args: "[]",
        deadline: now - 1,
        idempotencyKey: null,
        now: now - 10,
      });
      assert.deepEqual(await bus.commands.claim(DB, "bot:stale", "conn-1", 5), []);
      assert.equal((await bus.commands.get(DB, command.id)).state, "expired");
    });

    it("expires a command whose deadline passes without an outcome, on time", async () => {
      const { command, outcome } = await bus.commands.send(DB, "bot:late", "never", [], { timeoutMs: 50 });
      await bus.commands.claim(DB, "bot:late", "conn-1", 1);
      const final = await outcome;
      assert.equal(final.state, "expired");
      assert.ok(final.finishedAt! >= command.deadline!);
      await rejectsWith(
        bus.commands.complete(DB, command.id, "conn-1", { state: "succeeded", result: "1" }),
        "TIDINGS_ERR_COMMAND_FINAL",
      );
    });

    it("lets the first of an outcome and the deadline win, never both", async () => {
      let raced = 0;
      for (let attempt = 0; raced < 10 && attempt < 40; attempt++) {
        const { command } = await bus.commands.send(DB, "bot:race", "x", [], { timeoutMs: 50 });
        const claimed = await bus.commands.claim(DB, "bot:race", "conn-1", 1);
        if (claimed.length === 0) {
          // A loaded machine reached the deadline before the claim: expired, never delivered.
          await bus.commands.expireNow(DB);
          assert.equal((await bus.commands.get(DB, command.id)).state, "expired");
          continue;
        }
        raced++;
        // Answer right at the deadline, while the expiry timer fires.
        await new Promise((r) => setTimeout(r, Math.max(0, command.deadline! - Date.now())));
        const answer = bus.commands.complete(DB, command.id, "conn-1", { state: "succeeded", result: "1" }).then(
          (c) => c.state,
          (e: unknown) => code(e),
        );
        const [state] = await Promise.all([answer, bus.commands.expireNow(DB)]);
        const final = await bus.commands.get(DB, command.id);
        if (state === "succeeded") assert.equal(final.state, "succeeded");
        else {
          assert.equal(state, "TIDINGS_ERR_COMMAND_FINAL");
          assert.equal(final.state, "expired");
        }
      }
      assert.equal(raced, 10, "ten commands claimed before their deadline");
    });

    it("keeps an outcome recorded before the deadline, and refuses one after it", async () => {
      const first = await bus.commands.send(DB, "bot:deadline", "x", [], { timeoutMs: 60_000 });
      await bus.commands.claim(DB, "bot:deadline", "conn-1", 1);
      await bus.commands.complete(DB, first.command.id, "conn-1", { state: "succeeded", result: "1" });
      const second = await bus.commands.send(DB, "bot:deadline", "x", [], { timeoutMs: 30 });
      await bus.commands.claim(DB, "bot:deadline", "conn-1", 1);
      assert.equal((await second.outcome).state, "expired");
      await rejectsWith(
        bus.commands.complete(DB, second.command.id, "conn-1", { state: "succeeded", result: "1" }),
        "TIDINGS_ERR_COMMAND_FINAL",
      );
      // The first one's deadline passing later (an expiry run after it) changes nothing.
      const expiredLater = await bus.store.expireCommands(DB, first.command.deadline! + 1);
      assert.ok(!expiredLater.some((c) => c.id === first.command.id));
      assert.equal((await bus.commands.get(DB, first.command.id)).state, "succeeded");
    });

    it("lets the first of a cancel and an outcome win", async () => {
      const states = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const { command, outcome } = await bus.commands.send(DB, "bot:cancel-race", "x");
        await bus.commands.claim(DB, "bot:cancel-race", "conn-1", 1);
        const [byClient, byCancel] = await Promise.all([
          bus.commands.complete(DB, command.id, "conn-1", { state: "succeeded", result: "2" }).then((c) => c.state, code),
          bus.commands.cancel(DB, command.id).then((c) => c.state, code),
        ]);
        const final = await outcome;
        states.add(final.state);
        if (final.state === "succeeded") {
          assert.deepEqual([byClient, byCancel], ["succeeded", "TIDINGS_ERR_COMMAND_FINAL"]);
        } else {
          assert.deepEqual([byClient, byCancel], ["TIDINGS_ERR_COMMAND_FINAL", "cancelled"]);
        }
      }
      assert.ok(states.size >= 1);
    });

    it("never gives one command to two claimers", async () => {
      const address = "bot:two";
      const ids: string[] = [];
      // maxOpenPerAddress is 3 here: use two addresses' worth by finishing as we go.
      for (let i = 0; i < 3; i++) ids.push((await bus.commands.send(DB, address, "x")).command.id);
      const [a, b] = await Promise.all([
        bus.commands.claim(DB, address, "conn-a", 10),
        bus.commands.claim(DB, address, "conn-b", 10),
      ]);
      const got = [...a, ...b].map((c) => c.id).sort();
      assert.deepEqual(got, [...ids].sort(), "every command claimed exactly once");
      const holder = new Map([...a.map((c) => [c.id, "conn-a"] as const), ...b.map((c) => [c.id, "conn-b"] as const)]);
      for (const id of ids) {
        const other = holder.get(id) === "conn-a" ? "conn-b" : "conn-a";
        await rejectsWith(bus.commands.start(DB, id, other), "TIDINGS_ERR_COMMAND_NOT_YOURS");
        await rejectsWith(
          bus.commands.complete(DB, id, other, { state: "succeeded", result: "1" }),
          "TIDINGS_ERR_COMMAND_NOT_YOURS",
        );
        await bus.commands.complete(DB, id, holder.get(id)!, { state: "succeeded", result: "1" });
      }
    });

    it("puts a released command back to pending and delivers it again with the same id", async () => {
      const address = "bot:release";
      const { command } = await bus.commands.send(DB, address, "x");
      await bus.commands.claim(DB, address, "conn-1", 1);
      await bus.commands.start(DB, command.id, "conn-1");
      const wake = nextOn(bus, DB, `command:${address}`);
      assert.equal(await bus.commands.release(DB, "conn-1", [{ id: command.id, address }]), 1);
      assert.deepEqual(withoutId(await wake), { type: "command", data: command.id });
      const back = await bus.commands.get(DB, command.id);
      assert.equal(back.state, "pending");
      const [again] = await bus.commands.claim(DB, address, "conn-2", 1);
      assert.equal(again!.id, command.id);
      assert.equal(again!.attempts, 2);
      await rejectsWith(
        bus.commands.complete(DB, command.id, "conn-1", { state: "succeeded", result: "1" }),
        "TIDINGS_ERR_COMMAND_NOT_YOURS",
      );
      const done = await bus.commands.complete(DB, command.id, "conn-2", { state: "succeeded", result: "1" });
      assert.equal(done.attempts, 2);
      assert.ok(done.startedAt !== null, "the first start is kept");
    });

    it("refuses bad results and changes nothing", async () => {
      const address = "bot:bad";
      const { command } = await bus.commands.send(DB, address, "x");
      await bus.commands.claim(DB, address, "conn-1", 1);
      const before = await bus.commands.get(DB, command.id);
      await rejectsWith(
        bus.commands.complete(DB, "00000000-0000-4000-8000-000000000000", "conn-1", { state: "succeeded", result: "1" }),
        "TIDINGS_ERR_COMMAND_NOT_FOUND",
      );
      await rejectsWith(bus.commands.start(DB, "nope", "conn-1"), "TIDINGS_ERR_COMMAND_NOT_FOUND");
      await rejectsWith(
        bus.commands.complete(DB, command.id, "conn-other", { state: "succeeded", result: "1" }),
        "TIDINGS_ERR_COMMAND_NOT_YOURS",
      );
      assert.deepEqual(await bus.commands.get(DB, command.id), before);
      await bus.commands.complete(DB, command.id, "conn-1", { state: "succeeded", result: "1" });
      const final = await bus.commands.get(DB, command.id);
      await rejectsWith(
        bus.commands.complete(DB, command.id, "conn-1", { state: "failed", error: { message: "late" } }),
        "TIDINGS_ERR_COMMAND_FINAL",
      );
      await rejectsWith(bus.commands.start(DB, command.id, "conn-1"), "TIDINGS_ERR_COMMAND_FINAL");
      assert.deepEqual(await bus.commands.get(DB, command.id), final);
    });

    it("enforces argument size, open commands per address, and validates what is sent", async () => {
      const e = await rejectsWith(bus.commands.send(DB, "bot:big", "x", ["y".repeat(300)]), "TIDINGS_ERR_COMMAND_TOO_LARGE");
      assert.equal(e.status, 413);
      assert.deepEqual(e.details, { maxBytes: 200 });
      for (let i = 0; i < 3; i++) await bus.commands.send(DB, "bot:full", "x");
      const full = await rejectsWith(bus.commands.send(DB, "bot:full", "x"), "TIDINGS_ERR_COMMAND_TOO_MANY");
      assert.equal(full.status, 429);
      await bus.commands.send(DB, "bot:other", "x"); // another address is not affected
      await rejectsWith(bus.commands.send(DB, "bad address!", "x"), "TIDINGS_ERR_ADDRESS_INVALID");
      await rejectsWith(bus.commands.send(DB, "a".repeat(201), "x"), "TIDINGS_ERR_ADDRESS_INVALID");
      await rejectsWith(bus.commands.send(DB, "bot:x", "1abc"), "TIDINGS_ERR_COMMAND_INVALID");
      await rejectsWith(bus.commands.send(DB, "bot:x", "x", "nope" as unknown as unknown[]), "TIDINGS_ERR_COMMAND_INVALID");
      await rejectsWith(bus.commands.send(DB, "bot:x", "x", [], { deadline: Date.now() - 1 }), "TIDINGS_ERR_COMMAND_INVALID");
      await rejectsWith(bus.commands.send(DB, "bot:x", "x", [], { deadline: Date.now() + 1000, timeoutMs: 10 }), "TIDINGS_ERR_COMMAND_INVALID");
      await rejectsWith(bus.commands.send("nodb", "bot:x", "x"), "TIDINGS_ERR_DB_UNKNOWN");
    });

    it("returns the first command for a repeated idempotency key", async () => {
      const first = await bus.commands.send(DB, "bot:idem", "x", [1], { idempotencyKey: "build-42" });
      const again = await bus.commands.send(DB, "bot:idem", "x", [2], { idempotencyKey: "build-42" });
      assert.equal(again.created, false);
      assert.deepEqual(again.command, first.command);
      const other = await bus.commands.send(DB, "bot:idem", "x", [1], { idempotencyKey: "build-43" });
      assert.notEqual(other.command.id, first.command.id);
      // The address is full now (3 open, the cap here): a resend still gets its command back.
      await bus.commands.send(DB, "bot:idem", "x", [3]);
      await rejectsWith(bus.commands.send(DB, "bot:idem", "x", [4]), "TIDINGS_ERR_COMMAND_TOO_MANY");
      const resent = await bus.commands.send(DB, "bot:idem", "x", [1], { idempotencyKey: "build-42" });
      assert.deepEqual([resent.created, resent.command.id], [false, first.command.id]);
      await rejectsWith(bus.commands.send(DB, "bot:idem", "x", [1], { idempotencyKey: "build-44" }), "TIDINGS_ERR_COMMAND_TOO_MANY");
    });

    it("lists by address, state and time, newest first", async () => {
      const t0 = Date.now();
      const a = await bus.commands.send(DB, "bot:list", "one");
      await new Promise((r) => setTimeout(r, 5));
      const b = await bus.commands.send(DB, "bot:list", "two");
      await bus.commands.cancel(DB, a.command.id);
      const ids = (cs: CommandRecord[]): string[] => cs.map((c) => c.id);
      assert.deepEqual(ids(await bus.commands.list(DB, { address: "bot:list" })), [b.command.id, a.command.id]);
      assert.deepEqual(ids(await bus.commands.list(DB, { address: "bot:list", states: ["cancelled"] })), [a.command.id]);
      assert.deepEqual(ids(await bus.commands.list(DB, { address: "bot:list", since: b.command.createdAt })), [b.command.id]);
      assert.deepEqual(ids(await bus.commands.list(DB, { address: "bot:list", until: b.command.createdAt })), [a.command.id]);
      assert.deepEqual(ids(await bus.commands.list(DB, { address: "bot:list", limit: 1 })), [b.command.id]);
      assert.ok((await bus.commands.list(DB, { since: t0 })).length >= 2);
      await rejectsWith(bus.commands.list(DB, { limit: 0 }), "TIDINGS_ERR_REQUEST_INVALID");
    });

    it("waits with a timeout and answers with the command as it stands", async () => {
      const { command } = await bus.commands.send(DB, "bot:wait", "x");
      const c = await bus.commands.wait(DB, command.id, { timeoutMs: 20 });
      assert.equal(c.state, "pending");
      const abort = new AbortController();
      const waiting = bus.commands.wait(DB, command.id, { signal: abort.signal });
      abort.abort();
      assert.equal((await waiting).state, "pending");
      await rejectsWith(bus.commands.wait(DB, "missing"), "TIDINGS_ERR_COMMAND_NOT_FOUND");
    });

    it("gives the proxy the client's return value, or rejects with why", async () => {
      const address = "software_dev.buildbot:6";
      const proxy = bus.proxy(DB, address);
      assert.equal((proxy as { then?: unknown }).then, undefined, "not a thenable");
      const serve = async (answer: (id: string) => Promise<unknown>): Promise<void> => {
        const wake = nextOn(bus, DB, `command:${address}`);
        await wake;
        const [c] = await bus.commands.claim(DB, address, "conn-p", 1);
        await answer(c!.id);
      };
      const ok = proxy.triggerMasterRequests!("now", 3);
      await serve((id) => bus.commands.complete(DB, id, "conn-p", { state: "succeeded", result: '{"started":3}' }));
      assert.deepEqual(await ok, { started: 3 });

      const failing = proxy.reconfigure!();
      await serve((id) => bus.commands.complete(DB, id, "conn-p", { state: "failed", error: { message: "no layout", code: "E_LAYOUT" } }));
      const e = await rejectsWith(failing, "TIDINGS_ERR_COMMAND_FAILED");
      assert.equal(e.message, "no layout");
      assert.deepEqual((e.details as { error: unknown }).error, { message: "no layout", code: "E_LAYOUT" });

      const cancelled = proxy.reconfigure!();
      await serve((id) => bus.commands.cancel(DB, id));
      await rejectsWith(cancelled, "TIDINGS_ERR_COMMAND_CANCELLED");

      await rejectsWith(bus.proxy(DB, address, { timeoutMs: 20 }).slow!(), "TIDINGS_ERR_COMMAND_EXPIRED");
    });
  });
}

describe("commands across a restart of a single-process store", () => {
  it("gives commands held by connections of the previous process back to pending", async () => {
    const path = `${tmp.dir}/restart.db`;
    const first = await busOn("sqlite", tmp.dir, {}, path);
    const a = await first.commands.send(DB, "bot:restart", "a");
    const b = await first.commands.send(DB, "bot:restart", "b");
    const c = await first.commands.send(DB, "bot:restart", "c");
    await first.commands.claim(DB, "bot:restart", "old-conn", 2);
    await first.commands.start(DB, a.command.id, "old-conn");
    // A crash: the store goes away without the claims being released.
    await first.store.close();
    const second = await busOn("sqlite", tmp.dir, {}, path);
    try {
      assert.equal((await second.commands.get(DB, a.command.id)).state, "pending");
      const claimed = await second.commands.claim(DB, "bot:restart", "new-conn", 10);
      assert.deepEqual(
        claimed.map((x) => [x.id, x.state, x.attempts]),
        [
          [a.command.id, "delivered", 2],
          [b.command.id, "delivered", 2],
          [c.command.id, "delivered", 1],
        ],
      );
    } finally {
      await second.close();
      await first.close().catch(() => {});
    }
  });
});
