/**
 * `POST /<db>/changes` on every store engine: a change or a batch becomes the
 * subscription-update messages a long-poll subscriber of the group receives; bad input
 * gets its precise 400 and appends nothing; only publishers may send changes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TidingsServer } from "../../src/server.js";
import { request, startServer, token } from "../helpers/server.js";
import { storeEngines } from "../helpers/store-engines.js";

const { engines, cleanup } = await storeEngines("httpchanges");
after(cleanup);

for (const engine of engines) {
  describe(`POST /<db>/changes on the ${engine.name} store`, { skip: engine.skip }, () => {
    let server: TidingsServer;
    let publisher = "";
    let subscriber = "";
    before(async () => {
      server = await startServer(engine.name === "memory" ? {} : { store: engine.url });
      publisher = await token("app", { role: "publisher" });
      subscriber = await token("7", { channels: ["invoice-*", "customer-*"] });
    });
    after(async () => {
      await server?.close();
    });

    const changes = (body: unknown, as = publisher) => request(`${server.url}/test/changes`, { token: as, body });
    const poll = (channels: string[], last: string | null = null) =>
      request(`${server.url}/test/bus`, { token: subscriber, body: { last_message: last, channels, max_messages: 10 } });

    it("publishes one change with the object as given and answers its message ids", async () => {
      const res = await changes({ model: "invoice", type: "update", object: { id: 42, state: "paid" }, updated_fields: ["state"] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [id] = res.body.message_ids as string[];
      const got = await poll(["invoice-42"]);
      assert.deepEqual(got.body.message, {
        message_id: id,
        type: "subscription-update",
        data: { type: "update", group: "invoice-42", object: { id: 42, state: "paid", updated_fields: ["state"] } },
      });
      assert.equal(got.body.channel, "invoice-42");
    });

    it("publishes a batch atomically and in order, with the ids of each change", async () => {
      const res = await changes({
        changes: [
          { model: "invoice", type: "create", object: { id: 43 } },
          { model: "invoice", type: "delete", object: { id: 43, state: "draft" }, groups: ["invoice-43", "customer-9"] },
        ],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [a, b] = res.body.changes as { message_ids: string[] }[];
      assert.equal(a!.message_ids.length, 1);
      assert.equal(b!.message_ids.length, 2);
      const got = await poll(["invoice-43", "customer-9"]);
      assert.deepEqual(
        (got.body.messages as { message: { message_id: string; data: unknown } }[]).map((m) => [m.message.message_id, m.message.data]),
        [
          [a!.message_ids[0], { type: "create", group: "invoice-43", object: { id: 43 } }],
          [b!.message_ids[0], { type: "delete", group: "invoice-43", object: { id: 43, state: "draft" } }],
          [b!.message_ids[1], { type: "delete", group: "customer-9", object: { id: 43, state: "draft" } }],
        ],
      );
    });

    it("answers bad input with a precise 400 and appends nothing", async () => {
      const cases: [unknown, string, RegExp][] = [
        [{ model: "invoice", type: "upsert", object: { id: 50 } }, "TIDINGS_ERR_CHANGE_INVALID", /type must be/],
        [{ model: "invoice", type: "create", object: { state: "x" } }, "TIDINGS_ERR_CHANGE_INVALID", /"id"/],
        [{ model: "invoice", type: "create", object: "50" }, "TIDINGS_ERR_CHANGE_INVALID", /object must be a JSON object/],
        [{ model: "", type: "create", object: { id: 50 } }, "TIDINGS_ERR_CHANGE_MODEL_INVALID", /model name/],
        [{ model: "invoice", type: "create", object: { id: 50 }, groups: ["invoice-50", "x\u0000"] }, "TIDINGS_ERR_CHANGE_GROUP_INVALID", /group/],
        [{ changes: [{ model: "invoice", type: "create", object: { id: 50 } }, { model: "invoice", type: "create" }] }, "TIDINGS_ERR_CHANGE_INVALID", /changes\[1\]/],
        [{ changes: [] }, "TIDINGS_ERR_CHANGE_INVALID", /non-empty/],
        [[1], "TIDINGS_ERR_CHANGE_INVALID", /JSON object/],
      ];
      for (const [body, code, text] of cases) {
        const res = await changes(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error.code, code, JSON.stringify(body));
        assert.match(res.body.error.message, text);
      }
      const left = await server.bus.store.read("test", { after: null, channels: ["invoice-50"], limit: 10 });
      assert.deepEqual(left.messages, [], "nothing was published on invoice-50");
    });

    it("refuses a subscriber's token", async () => {
      const res = await changes({ model: "invoice", type: "create", object: { id: 1 } }, subscriber);
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, "TIDINGS_ERR_ROLE_FORBIDDEN");
    });
  });
}
