/**
 * The sentences src/protocol/schema/check.ts makes of TypeBox's errors, for the cases the
 * wire and config tests do not reach: the code of a nested field, keys that are not
 * identifiers, the branch of a union meant, and the order of the value's keys.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Type } from "@sinclair/typebox";
import { check, checkCompiled, formatIssues } from "../../src/protocol/schema/check.js";
import { RESULT_BODY } from "../../src/protocol/command-bodies.js";
import { parseWire } from "../../src/protocol/validate.js";
import { TidingsError } from "../../src/errors.js";

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof TidingsError);
    return { code: e.code, message: e.message };
  }
  return assert.fail("accepted");
}

describe("schema check", () => {
  it("gives a nested field the code of the nearest schema that declares one", () => {
    assert.deepEqual(refusal(() => parseWire(RESULT_BODY, { claimer: "c", error: { message: 5 } }, "The body")), {
      code: "TIDINGS_ERR_COMMAND_INVALID",
      message: "error.message must be a string, got 5.",
    });
  });

  it("names keys that are not identifiers as a user writes them, and each array item by index", () => {
    const schema = Type.Record(Type.String(), Type.Object({ tags: Type.Array(Type.String()) }));
    assert.equal(formatIssues(check(schema, { "my db": { tags: ["a", 1] } }), "The value"), '["my db"].tags[1] must be a string, got 1.');
  });

  it("speaks of the union branch the value meant, and of the whole when it meant none", () => {
    const schema = Type.Union([Type.String(), Type.Object({ one: Type.String() }), Type.Object({ many: Type.Array(Type.String()) })]);
    assert.equal(formatIssues(check(schema, { many: [2] }), "The value"), "many[0] must be a string, got 2.");
    assert.equal(formatIssues(check(schema, 5), "The value"), "The value must be a string or an object, got 5.");
  });

  it("lists missing fields first, then every problem in the order of the value's keys; the compiled check says the same", () => {
    const schema = Type.Object({ a: Type.Integer(), b: Type.Boolean(), c: Type.String() }, { additionalProperties: false });
    const value = { b: "no", bb: 1, a: 1.5 };
    const expected = 'The value has no "c" field; b must be true or false, got "no"; unknown key "bb" (did you mean "b"?); a must be a whole number, got 1.5.';
    assert.equal(formatIssues(check(schema, value), "The value"), expected);
    assert.equal(formatIssues(checkCompiled(schema, value), "The value"), expected);
    assert.deepEqual(check(schema, { a: 1, b: true, c: "" }), []);
  });

  it("refuses numbers JSON cannot carry", () => {
    assert.equal(formatIssues(check(Type.Object({ n: Type.Number() }), { n: Number.NaN }), "The value"), "n must be a number, got null.");
  });
});
