import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { buildNotification } from "../../src/core/notify.js";
import { TidingsError } from "../../src/errors.js";
import { DB, makeBus } from "./harness.js";

function rejects(input: unknown, message: string): void {
  assert.throws(
    () => buildNotification(input),
    (e: unknown) => e instanceof TidingsError && e.code === "TIDINGS_ERR_NOTIFY_INVALID" && e.status === 400 && e.message === message,
    JSON.stringify(input),
  );
}

describe("notify(): Tryton's notification", () => {
  it("goes to user:<id> with kind/type notification, empty body and priority 1 by default", () => {
    assert.deepEqual(buildNotification({ title: "Invoice posted", user: 7 }), {
      channel: "user:7",
      message: { type: "notification", kind: "notification", title: "Invoice posted", body: "", priority: 1 },
    });
    assert.equal(buildNotification({ title: "t", user: "7" }).channel, "user:7");
  });

  it("goes to one client when client is given, with body and priority kept", () => {
    assert.deepEqual(buildNotification({ title: "Done", body: "Line one\nline two", priority: 3, user: 7, client: "c-1" }), {
      channel: "client:c-1",
      message: { type: "notification", kind: "notification", title: "Done", body: "Line one\nline two", priority: 3 },
    });
    assert.equal(buildNotification({ title: "t", client: "c-2" }).channel, "client:c-2");
  });

  it("accepts priorities 0 to 3", () => {
    for (const priority of [0, 1, 2, 3]) assert.equal(buildNotification({ title: "t", user: 1, priority }).message.priority, priority);
  });

  it("rejects invalid input with a clear error", () => {
    rejects(null, "A notification must be a JSON object.");
    rejects(["t"], "A notification must be a JSON object.");
    rejects({ user: 1 }, "title must be a non-empty string.");
    rejects({ title: "  ", user: 1 }, "title must be a non-empty string.");
    rejects({ title: 5, user: 1 }, "title must be a non-empty string.");
    rejects({ title: "two\nlines", user: 1 }, "title must be a single line.");
    rejects({ title: "carriage\rreturn", user: 1 }, "title must be a single line.");
    rejects({ title: "x".repeat(201), user: 1 }, "title may have at most 200 characters.");
    rejects({ title: "t", body: 3, user: 1 }, "body must be a string.");
    rejects({ title: "t", body: "x".repeat(4001), user: 1 }, "body may have at most 4000 characters.");
    rejects({ title: "<b>t</b>", user: 1 }, "title and body must be plain text, without markup.");
    rejects({ title: "t", body: 'see <a href="x">here</a>', user: 1 }, "title and body must be plain text, without markup.");
    for (const priority of [-1, 4, 1.5, "1", null]) {
      rejects({ title: "t", priority, user: 1 }, "priority must be an integer from 0 (low) to 3 (urgent).");
    }
    rejects({ title: "t", client: "" }, "client must be a non-empty string.");
    rejects({ title: "t", client: 5 }, "client must be a non-empty string.");
    rejects({ title: "t" }, "user (a user id) or client is required.");
    rejects({ title: "t", user: 1.5 }, "user (a user id) or client is required.");
    rejects({ title: "t", user: "" }, "user (a user id) or client is required.");
  });

  it("keeps comparison signs that are not markup", () => {
    assert.equal(buildNotification({ title: "1 < 2 and 3 > 2", user: 1 }).message.title, "1 < 2 and 3 > 2");
  });

  it("is published by the bus like any message, with a message_id first", async () => {
    const { bus } = await makeBus();
    try {
      const id = await bus.notify(DB, { title: "Hello", user: 7, priority: 2 });
      const got = await bus.poll(DB, { channels: ["user:7"], after: null, limit: 1, timeoutMs: 0 });
      assert.equal(got.messages[0]!.json, JSON.stringify({ message_id: id, type: "notification", kind: "notification", title: "Hello", body: "", priority: 2 }));
      await assert.rejects(bus.notify(DB, { title: "", user: 7 }), { code: "TIDINGS_ERR_NOTIFY_INVALID" });
    } finally {
      await bus.close();
    }
  });
});
