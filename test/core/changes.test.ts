/**
 * Model-change broadcasts from the TypeScript API (DESIGN §7, issue 11) on every store
 * engine: what each of created/updated/deleted appends, to which groups, with which object;
 * bad input refused with its code and nothing appended; on PostgreSQL, changes made inside
 * the application's transaction appear only if it commits.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { TidingsBus as Bus } from "../../src/bus.js";
import { TidingsError, type ErrorCode } from "../../src/errors.js";
import { POSTGRES_URL, storeEngines } from "../helpers/store-engines.js";

const DB = "shop";
const { engines, cleanup } = await storeEngines("changes");
after(cleanup);

/**
 * Every message on `channels`, parsed, in log order; once the log is readable through the id
 * `through` (on PostgreSQL a commit becomes readable only when every earlier transaction of
 * the shared server has ended: the late-commit guard of DESIGN §3).
 */
async function read(bus: Bus, channels: readonly string[], through?: string): Promise<Record<string, unknown>[]> {
  for (const end = Date.now() + 15_000; through !== undefined; ) {
    const head = await bus.store.head(DB);
    if (head !== null && head >= through) break;
    if (Date.now() > end) throw new Error(`the log was not readable through ${through} within 15 s (head ${head})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const page = await bus.store.read(DB, { after: null, channels, limit: 1000 });
  return page.messages.map((m) => {
    const parsed = JSON.parse(m.json) as Record<string, unknown>;
    assert.equal(parsed.message_id, m.id);
    assert.equal(m.channel, (parsed.data as { group: string }).group, "a change travels on its group's channel");
    const { message_id: _id, ...rest } = parsed;
    return rest;
  });
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, text?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TidingsError, String(e));
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}

for (const engine of engines) {
  describe(`model changes on the ${engine.name} store`, { skip: engine.skip }, () => {
    let bus: Bus;
    // Each run names its own models, so that a shared store's leftovers cannot be mistaken for them.
    const m = (name: string) => `${name}${randomBytes(3).toString("hex")}`;
    before(async () => {
      bus = await Bus.create({ store: engine.url, databases: [DB], logLevel: "silent" });
    });
    after(async () => {
      await bus?.close();
    });

    it("sends rohrpost's messages to <model>-<id> with {id} as the object by default", async () => {
      const invoice = m("invoice");
      const [c] = await bus.changes.created(DB, invoice, { id: 42, state: "draft" });
      const [u] = await bus.changes.updated(DB, invoice, { id: 42, state: "paid" }, { updatedFields: ["state"] });
      const [d] = await bus.changes.deleted(DB, invoice, { id: 42, state: "paid" });
      assert.ok(c! < u! && u! < d!, "ids in log order");
      const group = `${invoice}-42`;
      assert.deepEqual(await read(bus, [group], d), [
        { type: "subscription-update", data: { type: "create", group, object: { id: 42 } } },
        { type: "subscription-update", data: { type: "update", group, object: { id: 42, updated_fields: ["state"] } } },
        { type: "subscription-update", data: { type: "delete", group, object: { id: 42 } } },
      ]);
    });

    it("follows a model's templates, functions and serializer, one message per group, in order", async () => {
      const invoice = m("invoice");
      bus.changes.model(invoice, {
        groups: [`${invoice}-{id}`, `customer-{customer_id}`, (o) => (o.total as number) > 1000 ? ["big", `${invoice}s`] : `${invoice}s`],
        serialize: (o, type) => (type === "delete" ? { id: o.id } : { id: o.id, state: o.state, total: o.total }),
      });
      const ids = await bus.changes.updated(DB, invoice, { id: 7, customer_id: "c1", state: "paid", total: 5000, secret: "x" }, {
        updatedFields: ["state"],
      });
      assert.equal(ids.length, 4);
      const object = { id: 7, state: "paid", total: 5000, updated_fields: ["state"] };
      const groups = [`${invoice}-7`, "customer-c1", "big", `${invoice}s`];
      const got = await read(bus, groups, ids.at(-1));
      assert.deepEqual(
        got,
        groups.map((group) => ({ type: "subscription-update", data: { type: "update", group, object } })),
      );
      // A null field leaves its template's group out; the serializer's own updated_fields wins.
      bus.changes.model(`${invoice}x`, {
        groups: ["customer-{customer_id}", `${invoice}x-{id}`],
        serialize: (o) => ({ id: o.id, updated_fields: ["everything"] }),
      });
      const [x] = await bus.changes.updated(DB, `${invoice}x`, { id: 8, customer_id: null }, { updatedFields: ["state"] });
      assert.deepEqual(await read(bus, [`${invoice}x-8`], x), [
        { type: "subscription-update", data: { type: "update", group: `${invoice}x-8`, object: { id: 8, updated_fields: ["everything"] } } },
      ]);
    });

    it("suppresses an update that changed nothing when the model asks, and honours explicit groups", async () => {
      const order = m("order");
      bus.changes.model(order, { suppressEmptyUpdates: true });
      assert.deepEqual(await bus.changes.updated(DB, order, { id: 1 }, { updatedFields: [] }), []);
      const [id] = await bus.changes.updated(DB, order, { id: 1 }, { updatedFields: ["x"], groups: [`${order}-all`] });
      assert.equal(typeof id, "string");
      assert.deepEqual(await read(bus, [`${order}-1`], id), []);
      assert.deepEqual((await read(bus, [`${order}-all`])).length, 1);
    });

    it("refuses bad input with a precise code and appends nothing, not even the valid part of a batch", async () => {
      const model = m("bad");
      const good = { model, type: "create" as const, object: { id: 1 } };
      await rejectsWith(bus.changes.publish(DB, [good, { ...good, type: "upsert" as never }]), "TIDINGS_ERR_CHANGE_INVALID", /changes\[1\]: type must be/);
      await rejectsWith(bus.changes.created(DB, model, { name: "no id" }), "TIDINGS_ERR_CHANGE_INVALID", /"id"/);
      await rejectsWith(bus.changes.created(DB, model, [1] as never), "TIDINGS_ERR_CHANGE_INVALID", /object must be a JSON object/);
      await rejectsWith(bus.changes.created(DB, "", { id: 1 }), "TIDINGS_ERR_CHANGE_MODEL_INVALID");
      await rejectsWith(bus.changes.created(DB, "bad\nmodel", { id: 1 }), "TIDINGS_ERR_CHANGE_MODEL_INVALID");
      await rejectsWith(bus.changes.created(DB, model, { id: "x".repeat(300) }), "TIDINGS_ERR_CHANGE_GROUP_INVALID");
      await rejectsWith(bus.changes.created(DB, model, { id: 1 }, { groups: ["ok", "bad\u0001"] }), "TIDINGS_ERR_CHANGE_GROUP_INVALID");
      await rejectsWith(bus.changes.deleted(DB, model, { id: 1 }, { groups: [] }), "TIDINGS_ERR_CHANGE_GROUP_INVALID");
      await rejectsWith(
        bus.changes.publish(DB, [{ ...good, updatedFields: ["a"] }]),
        "TIDINGS_ERR_CHANGE_INVALID",
        /only for updates/,
      );
      await rejectsWith(bus.changes.updated(DB, model, { id: 1 }, { updatedFields: [1] as never }), "TIDINGS_ERR_CHANGE_INVALID");
      assert.throws(() => bus.changes.model(`${model}t`, { groups: "x-{id" }), { code: "TIDINGS_ERR_CHANGE_GROUP_INVALID" });
      bus.changes.model(`${model}u`, { groups: "x-{customer}" });
      await rejectsWith(bus.changes.created(DB, `${model}u`, { id: 1 }), "TIDINGS_ERR_CHANGE_GROUP_INVALID", /customer/);
      assert.throws(() => bus.changes.model(`${model}u`, {}), { code: "TIDINGS_ERR_CONFIG" });
      assert.deepEqual(await read(bus, [`${model}-1`, "ok"]), []);
    });
  });
}

describe("model changes inside the application's PostgreSQL transaction", { skip: engines[2]!.skip }, () => {
  let bus: Bus;
  let sql: postgres.Sql;
  before(async () => {
    bus = await Bus.create({ store: engines[2]!.url, databases: [DB], logLevel: "silent" });
    sql = postgres(POSTGRES_URL, { max: 2, onnotice: () => {} });
  });
  after(async () => {
    await bus?.close();
    await sql?.end({ timeout: 5 });
  });

  it("appears when the transaction commits and never when it rolls back", async () => {
    const invoice = `inv${randomBytes(3).toString("hex")}`;
    await assert.rejects(
      sql.begin(async (tx) => {
        await bus.changes.created(DB, invoice, { id: 1 }, { tx });
        throw new Error("rollback");
      }),
      /rollback/,
    );
    const ids = await sql.begin(async (tx) => {
      const ids = await bus.changes.updated(DB, invoice, { id: 1 }, { tx, updatedFields: ["state"] });
      assert.deepEqual(await read(bus, [`${invoice}-1`]), [], "nothing readable before the commit");
      return ids;
    });
    const got = await read(bus, [`${invoice}-1`], ids[0]);
    assert.deepEqual(got, [{ type: "subscription-update", data: { type: "update", group: `${invoice}-1`, object: { id: 1, updated_fields: ["state"] } } }]);
    assert.equal(ids.length, 1);
  });
});
