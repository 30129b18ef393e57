import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bearerToken, parseAuthorization } from "../../src/auth/credentials.js";

describe("parseAuthorization", () => {
  it("splits scheme and value, the scheme case-insensitively", () => {
    assert.deepEqual(parseAuthorization("Bearer abc.def"), { scheme: "bearer", value: "abc.def" });
    assert.deepEqual(parseAuthorization("bEaReR   abc  "), { scheme: "bearer", value: "abc" });
    assert.deepEqual(parseAuthorization("Session YWRtaW46MTpr"), { scheme: "session", value: "YWRtaW46MTpr" });
  });

  it("reports a scheme without a value with an empty value, and no header as null", () => {
    assert.deepEqual(parseAuthorization("Bearer"), { scheme: "bearer", value: "" });
    assert.equal(parseAuthorization(""), null);
    assert.equal(parseAuthorization(undefined), null);
  });
});

describe("bearerToken", () => {
  it("takes the token of a Bearer header only", () => {
    assert.equal(bearerToken("bearer t0k"), "t0k");
    assert.equal(bearerToken("Bearer "), null);
    assert.equal(bearerToken("Session abc"), null);
    assert.equal(bearerToken("Basic dXNlcjpwYXNz"), null);
    assert.equal(bearerToken(undefined), null);
  });
});
