import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AccessControl, type AccessRule } from "../../src/core/access.js";
import type { Identity, Role } from "../../src/core/identity.js";
import { TidingsError } from "../../src/errors.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { DEFAULTS } from "../../src/options.js";

const CLAIMS = { ttlMs: DEFAULTS.clientClaimTtlMs, maxPerUser: DEFAULTS.maxClientClaimsPerUser };

function who(user: string, opts: { role?: Role; channels?: string[]; db?: string } = {}): Identity {
  return {
    user,
    db: opts.db ?? "erp",
    role: opts.role ?? "subscriber",
    channels: opts.channels ?? [],
    addresses: [],
    expiresAt: null,
    via: "jwt",
  };
}

function acl(rules: AccessRule[] = []): AccessControl {
  return new AccessControl(new MemoryStore(), rules, CLAIMS);
}

describe("access: built-in channels", () => {
  it("gives a caller its own user:<id> and notification:<id>, nobody else's", async () => {
    const a = acl();
    assert.equal(await a.canRead("erp", who("7"), "user:7"), true);
    assert.equal(await a.canRead("erp", who("7"), "notification:7"), true);
    assert.equal(await a.canRead("erp", who("7"), "user:8"), false);
    assert.equal(await a.canRead("erp", who("7"), "notification:8"), false);
    assert.equal(await a.canRead("erp", who("7"), "user:77"), false);
    assert.equal(await a.canRead("erp", who("7"), "user:"), false);
  });

  it("denies everything else by default", async () => {
    const a = acl();
    for (const channel of ["invoice-42", "chat:sale.sale,12", "user", "client:", ":7", "USER:7"]) {
      assert.equal(await a.canRead("erp", who("7"), channel), false, channel);
    }
  });

  it("gives client:<id> to the first user who uses it, for good, per database", async () => {
    const a = acl();
    assert.equal(await a.canRead("erp", who("1"), "client:abc"), true);
    assert.equal(await a.canRead("erp", who("2"), "client:abc"), false);
    assert.equal(await a.canRead("erp", who("1"), "client:abc"), true);
    // The owner is recorded in the store: a fresh AccessControl (another instance) agrees.
    const store = new MemoryStore();
    await new AccessControl(store, [], CLAIMS).canRead("erp", who("2"), "client:xyz");
    assert.equal(await new AccessControl(store, [], CLAIMS).canRead("erp", who("1"), "client:xyz"), false);
    assert.equal(await new AccessControl(store, [], CLAIMS).canRead("erp", who("2"), "client:xyz"), true);
    // Another database is another namespace.
    assert.equal(await a.canRead("other", who("2"), "client:abc"), true);
  });

  it("does not let a denied caller claim a client:<id> it was refused", async () => {
    const a = acl();
    await a.canRead("erp", who("1"), "client:c1");
    await a.canRead("erp", who("2"), "client:c1");
    assert.equal(await a.ownerOf("erp", "client:c1", "3"), "1");
  });

  it("lets admins read every channel", async () => {
    const a = acl();
    for (const channel of ["user:1", "client:zzz", "anything"]) {
      assert.equal(await a.canRead("erp", who("9", { role: "admin" }), channel), true);
    }
    // An admin reading a client channel does not become its owner.
    assert.equal(await a.canRead("erp", who("5"), "client:zzz"), true);
  });
});

describe("access: configured rules and token patterns", () => {
  it("grants by pattern, with {user} standing for the caller and * for any run", async () => {
    const a = acl([{ channels: "chat:{user}:*" }, { channels: "invoice-*" }]);
    assert.equal(await a.canRead("erp", who("7"), "chat:7:sales"), true);
    assert.equal(await a.canRead("erp", who("7"), "chat:8:sales"), false);
    assert.equal(await a.canRead("erp", who("7"), "chat:77:sales"), false);
    assert.equal(await a.canRead("erp", who("7"), "invoice-42"), true);
    assert.equal(await a.canRead("erp", who("7"), "invoice-"), true);
    assert.equal(await a.canRead("erp", who("7"), "xinvoice-42"), false);
  });

  it("treats every other character of a pattern literally", async () => {
    const a = acl([{ channels: "sale.sale,(1)+[x]" }]);
    assert.equal(await a.canRead("erp", who("7"), "sale.sale,(1)+[x]"), true);
    assert.equal(await a.canRead("erp", who("7"), "saleXsale,(1)+[x]"), false);
    assert.equal(await a.canRead("erp", who("7"), "sale.sale,(11)[x]"), false);
  });

  it("does not let a user id inject pattern syntax", async () => {
    const a = acl([{ channels: "private:{user}" }]);
    assert.equal(await a.canRead("erp", who(".*"), "private:.*"), true);
    assert.equal(await a.canRead("erp", who(".*"), "private:7"), false);
  });

  it("restricts a rule to its users and databases", async () => {
    const a = acl([
      { channels: "ops-*", users: ["1", "2"] },
      { channels: "erp-only", databases: ["erp"] },
    ]);
    assert.equal(await a.canRead("erp", who("1"), "ops-alerts"), true);
    assert.equal(await a.canRead("erp", who("3"), "ops-alerts"), false);
    assert.equal(await a.canRead("erp", who("3"), "erp-only"), true);
    assert.equal(await a.canRead("crm", who("3", { db: "crm" }), "erp-only"), false);
  });

  it("grants the channel patterns carried by the caller's token", async () => {
    const a = acl();
    const caller = who("7", { channels: ["chat:sale.sale,*", "team-{user}"] });
    assert.equal(await a.canRead("erp", caller, "chat:sale.sale,12"), true);
    assert.equal(await a.canRead("erp", caller, "chat:purchase,12"), false);
    assert.equal(await a.canRead("erp", caller, "team-7"), true);
    assert.equal(await a.canRead("erp", caller, "team-8"), false);
  });

  it("names the first forbidden channel in a stable error", async () => {
    const a = acl([{ channels: "ok-*" }]);
    await a.assertCanRead("erp", who("7"), ["user:7", "ok-1"]);
    await assert.rejects(a.assertCanRead("erp", who("7"), ["ok-1", "nope", "user:8"]), (e: unknown) => {
      assert.ok(e instanceof TidingsError);
      assert.equal(e.status, 403);
      assert.deepEqual(e.toJSON(), {
        error: { code: "TIDINGS_ERR_CHANNEL_FORBIDDEN", message: 'Not allowed to read channel "nope".', channel: "nope" },
      });
      return true;
    });
  });
});
