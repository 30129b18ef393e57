/**
 * The command HTTP API on the wire: senders (send, get, wait, list, cancel) and long-polling
 * clients (claim, start, result, renew, release, and being woken through POST /<db>/bus).
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { request, startServer, token } from "../helpers/server.js";

/** Resolves once `cond` holds, checking on each turn of the event loop; fails after `ms`. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("command HTTP API", () => {
  let server: TidingsServer;
  let base: string;
  let publisher: string;
  let bot: string;
  let otherBot: string;
  let subscriber: string;

  before(async () => {
    server = await startServer({
      commands: { maxArgsBytes: 100, maxResultBytes: 100, maxOpenPerAddress: 5, leaseMs: 60_000 },
    });
    base = `${server.url}/test`;
    publisher = await token("app", { role: "publisher" });
    bot = await token("bot5", { addresses: ["software_dev.buildbot:5", "bot:*"] });
    otherBot = await token("bot6", { addresses: ["bot:*"] });
    subscriber = await token("viewer", { channels: ["*"] });
  });
  after(() => server.close());

  async function send(body: unknown, query = ""): Promise<{ status: number; body: any }> {
    return request(`${base}/commands${query}`, { token: publisher, body });
  }

  it("stores a command and answers with it, exactly", async () => {
    const before = Date.now();
    const res = await send({
      address: "software_dev.buildbot:5",
      method: "triggerMasterRequests",
      args: [1, "two", { three: 3 }],
      timeout: 60,
      idempotency_key: "build-1",
    });
    assert.equal(res.status, 201);
    const c = res.body;
    assert.match(c.id, UUID);
    assert.match(c.created_at, ISO);
    assert.ok(Date.parse(c.created_at) >= before);
    assert.equal(Date.parse(c.deadline), Date.parse(c.created_at) + 60_000);
    assert.deepEqual(c, {
      id: c.id,
      address: "software_dev.buildbot:5",
      method: "triggerMasterRequests",
      args: [1, "two", { three: 3 }],
      state: "pending",
      result: null,
      error: null,
      idempotency_key: "build-1",
      deadline: c.deadline,
      attempts: 0,
      claimed_by: null,
      lease_until: null,
      created_at: c.created_at,
      delivered_at: null,
      started_at: null,
      finished_at: null,
    });
    const again = await send({ address: "software_dev.buildbot:5", method: "other", idempotency_key: "build-1" });
    assert.equal(again.status, 200, "an idempotent repeat is not a creation");
    assert.deepEqual(again.body, c);
    const got = await request(`${base}/commands/${c.id}`, { method: "GET", token: publisher });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, c);
  });

  it("lets only publishers and admins send and inspect", async () => {
    const body = { address: "bot:1", method: "x" };
    const anonymous = await request(`${base}/commands`, { body });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, "TIDINGS_ERR_AUTH_REQUIRED");
    for (const t of [bot, subscriber]) {
      const res = await request(`${base}/commands`, { token: t, body });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, "TIDINGS_ERR_ROLE_FORBIDDEN");
      const list = await request(`${base}/commands`, { method: "GET", token: t });
      assert.equal(list.status, 403);
    }
    const admin = await token("root", { role: "admin" });
    assert.equal((await request(`${base}/commands`, { token: admin, body })).status, 201);
    const unknown = await request(`${server.url}/nodb/commands`, { token: publisher, body });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, "TIDINGS_ERR_DB_UNKNOWN");
  });

  it("refuses malformed commands and enforces the limits", async () => {
    const cases: Array<[unknown, number, string]> = [
      [[1, 2], 400, "TIDINGS_ERR_REQUEST_INVALID"],
      [{ address: "no spaces", method: "x" }, 400, "TIDINGS_ERR_ADDRESS_INVALID"],
      [{ address: "bot:1" }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [{ address: "bot:1", method: "x", args: { a: 1 } }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [{ address: "bot:1", method: "x", timeout: -1 }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [{ address: "bot:1", method: "x", deadline: "2001-01-01T00:00:00Z" }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [{ address: "bot:1", method: "x", deadline: true }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [{ address: "bot:1", method: "x", args: ["y".repeat(200)] }, 413, "TIDINGS_ERR_COMMAND_TOO_LARGE"],
    ];
    for (const [body, status, code] of cases) {
      const res = await send(body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.body.error.code, code, JSON.stringify(body));
    }
    const large = await send({ address: "bot:1", method: "x", args: ["y".repeat(200)] });
    assert.deepEqual(large.body, {
      error: { code: "TIDINGS_ERR_COMMAND_TOO_LARGE", message: "A command's args may have at most 100 bytes of JSON.", maxBytes: 100 },
    });
    for (let i = 0; i < 5; i++) assert.equal((await send({ address: "bot:full", method: "x" })).status, 201);
    const full = await send({ address: "bot:full", method: "x" });
    assert.equal(full.status, 429);
    assert.deepEqual(full.body, {
      error: {
        code: "TIDINGS_ERR_COMMAND_TOO_MANY",
        message: "Address bot:full already has 5 commands without an outcome (at most 5).",
        address: "bot:full",
        max: 5,
      },
    });
  });

  it("serves a long-polling client: claim, start, result, and the sender's long-poll sees it", async () => {
    const address = "software_dev.buildbot:5";
    const sent = await send({ address, method: "add", args: [2, 3] });
    const waiting = request(`${base}/commands/${sent.body.id}?wait=10`, { method: "GET", token: publisher });

    const claim = await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "worker-1" } });
    assert.equal(claim.status, 200);
    assert.equal(claim.body.claimer, "worker-1");
    assert.equal(claim.body.lease_ms, 60_000);
    assert.equal(typeof claim.body.cursor, "string");
    const mine = claim.body.commands.find((c: { id: string }) => c.id === sent.body.id);
    assert.deepEqual(mine, { id: sent.body.id, address, method: "add", args: [2, 3], attempt: 1, deadline: sent.body.deadline });

    const start = await request(`${base}/commands/${sent.body.id}/start`, { token: bot, body: { claimer: "worker-1" } });
    assert.equal(start.status, 200);
    assert.equal(start.body.state, "running");
    assert.equal(start.body.claimed_by, "http:bot5:worker-1");
    assert.match(start.body.started_at, ISO);

    const result = await request(`${base}/commands/${sent.body.id}/result`, { token: bot, body: { claimer: "worker-1", result: 5 } });
    assert.equal(result.status, 200);
    assert.equal(result.body.state, "succeeded");
    assert.equal(result.body.result, 5);
    const waited = await waiting;
    assert.equal(waited.status, 200);
    assert.deepEqual(waited.body, result.body);
    // Release what else the first test left claimed, so later tests start clean.
    for (const c of claim.body.commands) {
      if (c.id !== sent.body.id) await request(`${base}/commands/${c.id}/cancel`, { token: publisher, body: {} });
    }
  });

  it("answers a wait that times out with the command as it stands", async () => {
    const sent = await send({ address: "bot:slow", method: "x" });
    const res = await request(`${base}/commands/${sent.body.id}?wait=0.05`, { method: "GET", token: publisher });
    assert.equal(res.status, 200);
    assert.equal(res.body.state, "pending");
    const bad = await request(`${base}/commands/${sent.body.id}?wait=soon`, { method: "GET", token: publisher });
    assert.equal(bad.status, 400);
    const missing = await request(`${base}/commands/nope?wait=1`, { method: "GET", token: publisher });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: { code: "TIDINGS_ERR_COMMAND_NOT_FOUND", message: 'No command "nope".', id: "nope" } });
  });

  it("sends and waits in one request with POST ?wait=", async () => {
    const address = "bot:sendwait";
    const answered = (async () => {
      const claim = await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "w", wait: 10 } });
      const [c] = claim.body.commands;
      await request(`${base}/commands/${c.id}/result`, { token: bot, body: { claimer: "w", error: { message: "no", code: "E_NO" } } });
    })();
    const res = await send({ address, method: "x" }, "?wait=10");
    await answered;
    assert.equal(res.status, 201);
    assert.equal(res.body.state, "failed");
    assert.deepEqual(res.body.error, { message: "no", code: "E_NO" });
  });

  it("refuses bad results with clear errors and changes nothing", async () => {
    const address = "bot:bad";
    const sent = await send({ address, method: "x" });
    const id = sent.body.id;
    await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "w1" } });
    const snapshot = (await request(`${base}/commands/${id}`, { method: "GET", token: publisher })).body;

    const post = (path: string, t: string, body: unknown) => request(`${base}/commands/${path}`, { token: t, body });
    const cases: Array<[string, string, unknown, number, string]> = [
      ["00000000-0000-4000-8000-000000000000/result", bot, { claimer: "w1", result: 1 }, 404, "TIDINGS_ERR_COMMAND_NOT_FOUND"],
      [`${id}/result`, bot, { claimer: "w2", result: 1 }, 403, "TIDINGS_ERR_COMMAND_NOT_YOURS"],
      [`${id}/result`, otherBot, { claimer: "w1", result: 1 }, 403, "TIDINGS_ERR_COMMAND_NOT_YOURS"],
      [`${id}/result`, bot, { claimer: "w1" }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [`${id}/result`, bot, { claimer: "w1", result: 1, error: { message: "x" } }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [`${id}/result`, bot, { claimer: "w1", error: "text" }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [`${id}/result`, bot, { claimer: "w1", error: { message: "m", code: 7 } }, 400, "TIDINGS_ERR_COMMAND_INVALID"],
      [`${id}/result`, bot, { result: 1 }, 400, "TIDINGS_ERR_REQUEST_INVALID"],
      [`${id}/result`, bot, { claimer: "bad claimer", result: 1 }, 400, "TIDINGS_ERR_REQUEST_INVALID"],
      [`${id}/result`, bot, { claimer: "w1", result: "z".repeat(200) }, 413, "TIDINGS_ERR_COMMAND_TOO_LARGE"],
      [`${id}/start`, bot, { claimer: "w2" }, 403, "TIDINGS_ERR_COMMAND_NOT_YOURS"],
    ];
    for (const [path, t, body, status, code] of cases) {
      const res = await post(path, t, body);
      assert.equal(res.status, status, `${path} ${JSON.stringify(body)}`);
      assert.equal(res.body.error.code, code, `${path} ${JSON.stringify(body)}`);
    }
    const malformed = await request(`${base}/commands/${id}/result`, { token: bot, body: "{not json" });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, "TIDINGS_ERR_REQUEST_JSON");
    assert.deepEqual((await request(`${base}/commands/${id}`, { method: "GET", token: publisher })).body, snapshot);

    const ok = await post(`${id}/result`, bot, { claimer: "w1", result: { fine: true } });
    assert.equal(ok.status, 200);
    const late = await post(`${id}/result`, bot, { claimer: "w1", result: 2 });
    assert.equal(late.status, 409);
    assert.deepEqual(late.body, {
      error: { code: "TIDINGS_ERR_COMMAND_FINAL", message: `Command ${id} is already succeeded.`, id, state: "succeeded" },
    });
    assert.deepEqual((await request(`${base}/commands/${id}`, { method: "GET", token: publisher })).body, ok.body);
  });

  it("lets only clients granted an address claim it", async () => {
    const res = await request(`${base}/commands/claim`, { token: bot, body: { address: "software_dev.buildbot:6" } });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, {
      error: {
        code: "TIDINGS_ERR_ADDRESS_FORBIDDEN",
        message: "Not allowed to serve address software_dev.buildbot:6.",
        address: "software_dev.buildbot:6",
      },
    });
    assert.equal((await request(`${base}/commands/claim`, { token: subscriber, body: { address: "bot:1" } })).status, 403);
    assert.equal((await request(`${base}/commands/claim`, { body: { address: "bot:1" } })).status, 401);
    const bad = await request(`${base}/commands/claim`, { token: bot, body: { address: "bot:1", limit: 0 } });
    assert.equal(bad.status, 400);
    const generated = await request(`${base}/commands/claim`, { token: bot, body: { address: "bot:empty" } });
    assert.equal(generated.status, 200);
    assert.match(generated.body.claimer, UUID, "a claimer is chosen when none is given");
    assert.deepEqual(generated.body.commands, []);
  });

  it("keeps command channels from ordinary subscribers, and wakes the address's client", async () => {
    const forbidden = await request(`${base}/bus`, { token: subscriber, body: { last_message: null, channels: ["command:bot:1"] } });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error.code, "TIDINGS_ERR_CHANNEL_FORBIDDEN");
    const outcome = await request(`${base}/bus`, { token: subscriber, body: { last_message: null, channels: ["command-outcome:x"] } });
    assert.equal(outcome.status, 403);
    const notMine = await request(`${base}/bus`, { token: bot, body: { last_message: null, channels: ["command:other:1"] } });
    assert.equal(notMine.status, 403);

    const address = "bot:wake";
    const claim = await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "w" } });
    const woken = request(`${base}/bus`, { token: bot, body: { last_message: claim.body.cursor, channels: [`command:${address}`] } });
    const sent = await send({ address, method: "x" });
    const res = await woken;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      channel: `command:${address}`,
      message: { message_id: res.body.message.message_id, type: "command", data: sent.body.id },
    });
  });

  it("parks a claim with wait until a command arrives", async () => {
    const address = "bot:parked";
    const log = server.bus.log("test");
    const listening = log.listenerCount;
    const parked = request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "p", wait: 10 } });
    // Send only once the claim found nothing and parked on command:<address>.
    await until(() => log.listenerCount > listening);
    const sent = await send({ address, method: "wake" });
    const res = await parked;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.commands.map((c: { id: string }) => c.id), [sent.body.id]);
    const empty = await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "p", wait: 0.05 } });
    assert.deepEqual(empty.body.commands, []);
  });

  it("lists, filters and cancels", async () => {
    const address = "bot:listing";
    const a = await send({ address, method: "a" });
    const b = await send({ address, method: "b" });
    const cancel = await request(`${base}/commands/${a.body.id}/cancel`, { token: publisher, body: {} });
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.state, "cancelled");
    assert.match(cancel.body.finished_at, ISO);
    const again = await request(`${base}/commands/${a.body.id}/cancel`, { token: publisher, body: {} });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, "TIDINGS_ERR_COMMAND_FINAL");

    const list = async (q: string): Promise<string[]> => {
      const res = await request(`${base}/commands?${q}`, { method: "GET", token: publisher });
      assert.equal(res.status, 200, q);
      return res.body.commands.map((c: { id: string }) => c.id);
    };
    assert.deepEqual(await list(`address=${address}`), [b.body.id, a.body.id]);
    assert.deepEqual(await list(`address=${address}&state=cancelled`), [a.body.id]);
    assert.deepEqual(await list(`address=${address}&state=pending,running`), [b.body.id]);
    assert.deepEqual(await list(`address=${address}&limit=1`), [b.body.id]);
    assert.deepEqual(await list(`address=${address}&since=${encodeURIComponent(b.body.created_at)}`).then((ids) => ids.includes(b.body.id)), true);
    assert.deepEqual(await list(`address=${address}&until=${Date.parse(a.body.created_at)}`), []);
    const bad = await request(`${base}/commands?state=done`, { method: "GET", token: publisher });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.message, "Unknown state \"done\": use pending, delivered, running, succeeded, failed, expired, cancelled.");
    assert.equal((await request(`${base}/commands?limit=5000`, { method: "GET", token: publisher })).status, 400);
    assert.equal((await request(`${base}/commands?since=yesterday`, { method: "GET", token: publisher })).status, 400);
  });

  it("renews and releases a client's claims", async () => {
    const address = "bot:lease";
    const sent = await send({ address, method: "x" });
    await request(`${base}/commands/claim`, { token: bot, body: { address, claimer: "l" } });
    const renewed = await request(`${base}/commands/renew`, { token: bot, body: { claimer: "l" } });
    assert.deepEqual(renewed.body, { renewed: 1 });
    assert.deepEqual((await request(`${base}/commands/renew`, { token: otherBot, body: { claimer: "l" } })).body, { renewed: 0 });
    const released = await request(`${base}/commands/release`, { token: bot, body: { claimer: "l", address } });
    assert.deepEqual(released.body, { released: 1 });
    const c = (await request(`${base}/commands/${sent.body.id}`, { method: "GET", token: publisher })).body;
    assert.equal(c.state, "pending");
    assert.equal(c.attempts, 1);
    const next = await request(`${base}/commands/claim`, { token: otherBot, body: { address, claimer: "l" } });
    assert.deepEqual(next.body.commands.map((x: { id: string; attempt: number }) => [x.id, x.attempt]), [[sent.body.id, 2]]);
    assert.equal((await request(`${base}/commands/renew`, { token: bot, body: {} })).status, 400);
  });
});
