import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { TokenCache } from "../../src/auth/token-cache.js";
import { Authenticator } from "../../src/auth/authenticate.js";
import { signToken } from "../../src/auth/tokens.js";
import type { Identity } from "../../src/core/identity.js";

const SECRET = "token-cache-secret-token-cache-secret-0123";

function identity(expiresAt: number | null): Identity {
  return { user: "7", db: "test", role: "subscriber", channels: [], addresses: [], expiresAt, via: "jwt" };
}

describe("verified token cache", () => {
  it("serves a verified token until it expires, then forgets it", () => {
    const cache = new TokenCache();
    const now = 1_000_000;
    cache.set("t", identity(now + 1000));
    assert.equal(cache.get("t", now)?.user, "7");
    assert.equal(cache.get("t", now + 1000), undefined, "expired at its exp");
    assert.equal(cache.get("t", now), undefined, "and gone for good");
  });

  it("keeps at most its bound, dropping the oldest", () => {
    const cache = new TokenCache(2);
    cache.set("a", identity(null));
    cache.set("b", identity(null));
    cache.set("c", identity(null));
    assert.equal(cache.get("a"), undefined);
    assert.ok(cache.get("b") && cache.get("c"));
  });

  it("still checks the database on a cached token, and never caches a forged one", async () => {
    const auth = new Authenticator({ secret: SECRET, sessionCookie: "s" });
    const token = await signToken(SECRET, { db: "test", user: "7" });
    assert.equal((await auth.fromToken("test", token)).user, "7");
    await assert.rejects(auth.fromToken("other", token), { code: "TIDINGS_ERR_AUTH_WRONG_DB" });
    const forged = await signToken("another-secret-another-secret-0123456789", { db: "test", user: "7" });
    for (let i = 0; i < 2; i++) await assert.rejects(auth.fromToken("test", forged), { code: "TIDINGS_ERR_AUTH_INVALID" });
  });

  it("knows a connection's repeated Bearer header, until the token expires or the header changes", async () => {
    const auth = new Authenticator({ secret: SECRET, sessionCookie: "s" });
    const connection = {};
    // Two seconds: `exp` is whole seconds, so a one-second token may have a few milliseconds left.
    const short = await signToken(SECRET, { db: "test", user: "7", ttlSeconds: 2 });
    const other = await signToken(SECRET, { db: "test", user: "8" });
    const headers = (token: string) => ({ authorization: `Bearer ${token}` });
    assert.equal(auth.cachedFromHeaders("test", headers(short), connection), undefined, "never verified yet");
    await auth.fromToken("test", short);
    assert.equal(auth.cachedFromHeaders("test", headers(short), connection)?.user, "7");
    assert.equal(auth.cachedFromHeaders("test", headers(short), connection)?.user, "7", "from the connection");
    assert.throws(() => auth.cachedFromHeaders("other", headers(short), connection), { code: "TIDINGS_ERR_AUTH_WRONG_DB" });
    assert.equal(auth.cachedFromHeaders("test", headers(other), connection), undefined, "another token is verified on its own");
    await auth.fromToken("test", other);
    assert.equal(auth.cachedFromHeaders("test", headers(other), connection)?.user, "8");
    assert.equal(auth.cachedFromHeaders("test", headers(short), connection)?.user, "7");
    // Past the token's life, without waiting for it.
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 3000 });
    try {
      assert.equal(auth.cachedFromHeaders("test", headers(short), connection), undefined, "expired: back to full verification");
      await assert.rejects(auth.fromHeaders("test", headers(short)), { code: "TIDINGS_ERR_AUTH_EXPIRED" });
    } finally {
      mock.timers.reset();
    }
  });
});
