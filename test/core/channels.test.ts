import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isValidDbName, validateChannel, validateChannelList } from "../../src/core/channels.js";
import { toAppendEntry } from "../../src/core/messages.js";
import { TidingsError } from "../../src/errors.js";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof TidingsError) return e.code;
    throw e;
  }
  return "accepted";
}

describe("channels: names", () => {
  it("accepts 1 to 255 characters of anything but control characters", () => {
    for (const c of ["a", "user:7", "client:4f0c-…", "chat:sale.sale,12", "invoice-42", "x".repeat(255), "é 漢字 🙂"]) {
      assert.equal(validateChannel(c), c);
    }
  });

  it("rejects empty, over-long, non-string and control-character names", () => {
    assert.equal(code(() => validateChannel("")), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel("x".repeat(256))), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel("a\nb")), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel("a\u0000")), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel("a\u007f")), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel(7)), "TIDINGS_ERR_CHANNEL_INVALID");
    assert.equal(code(() => validateChannel(null)), "TIDINGS_ERR_CHANNEL_INVALID");
  });

  it("validates database names", () => {
    for (const db of ["tryton", "a", "prod_2024.eu-west", "x".repeat(63)]) assert.equal(isValidDbName(db), true, db);
    for (const db of ["", "x".repeat(64), "a/b", "a b", "é", "a:b", "../etc"]) assert.equal(isValidDbName(db), false, db);
  });
});

describe("channels: lists in a request", () => {
  it("keeps the order and removes duplicates", () => {
    assert.deepEqual(validateChannelList(["b", "a", "b", "c", "a"], 100), ["b", "a", "c"]);
    assert.deepEqual(validateChannelList([], 100), []);
  });

  it("accepts up to the cap and refuses one more", () => {
    const list = Array.from({ length: 100 }, (_, i) => `c${i}`);
    assert.equal(validateChannelList(list, 100).length, 100);
    assert.throws(() => validateChannelList([...list, "one-more"], 100), (e: unknown) => {
      assert.ok(e instanceof TidingsError);
      assert.deepEqual(e.toJSON(), { error: { code: "TIDINGS_ERR_CHANNEL_TOO_MANY", message: "At most 100 channels per subscription.", max: 100 } });
      return true;
    });
  });

  it("refuses what is not a list of strings", () => {
    for (const bad of [null, "user:1", { 0: "a" }, 5, ["a", 5], ["a", null], [["a"]]]) {
      assert.equal(code(() => validateChannelList(bad, 100)), "TIDINGS_ERR_REQUEST_INVALID", JSON.stringify(bad));
    }
    assert.equal(code(() => validateChannelList(["ok", "x".repeat(256)], 100)), "TIDINGS_ERR_CHANNEL_INVALID");
  });
});

describe("messages: what a publisher may send", () => {
  it("serialises once, without any message_id the publisher sent", () => {
    assert.deepEqual(toAppendEntry("a", { message_id: "mine", type: "t", x: 1 }, 1000), {
      channel: "a",
      type: "t",
      payload: '{"type":"t","x":1}',
    });
  });

  it("rejects non-objects, missing or bad types, bad channels and oversized messages", () => {
    assert.equal(code(() => toAppendEntry("a", [1], 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("a", "text", 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("a", { x: 1 }, 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("a", { type: "" }, 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("a", { type: 3 }, 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("a", { type: "x".repeat(101) }, 1000)), "TIDINGS_ERR_MESSAGE_INVALID");
    assert.equal(code(() => toAppendEntry("", { type: "t" }, 1000)), "TIDINGS_ERR_CHANNEL_INVALID");
    const big = { type: "t", data: "é".repeat(10) }; // 2 bytes each in UTF-8
    assert.equal(code(() => toAppendEntry("a", big, JSON.stringify(big).length)), "TIDINGS_ERR_MESSAGE_TOO_LARGE");
    assert.equal(code(() => toAppendEntry("a", big, Buffer.byteLength(JSON.stringify(big)))), "accepted");
  });
});
