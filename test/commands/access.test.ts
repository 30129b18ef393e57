/** Who may serve an address and read the command channels (the additive rules of AccessControl). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AccessControl } from "../../src/core/access.js";
import type { Identity, Role } from "../../src/core/identity.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { DEFAULTS } from "../../src/options.js";

const CLAIMS = { ttlMs: DEFAULTS.clientClaimTtlMs, maxPerUser: DEFAULTS.maxClientClaimsPerUser };

function who(user: string, role: Role, extra: { channels?: string[]; addresses?: string[] } = {}): Identity {
  return { user, db: "test", role, channels: extra.channels ?? [], addresses: extra.addresses ?? [], expiresAt: null, via: "jwt" };
}

describe("command access rules", () => {
  // A rule granting every channel to everyone must still not open the command channels.
  const access = new AccessControl(new MemoryStore(), [{ channels: "*" }], CLAIMS);

  it("lets serve an address only through token address patterns or the admin role", () => {
    const bot = who("5", "subscriber", { addresses: ["software_dev.buildbot:{user}", "bots:*"] });
    assert.equal(access.canServeAddress(bot, "software_dev.buildbot:5"), true);
    assert.equal(access.canServeAddress(bot, "software_dev.buildbot:6"), false);
    assert.equal(access.canServeAddress(bot, "bots:anything"), true);
    assert.equal(access.canServeAddress(who("1", "publisher", { channels: ["*"] }), "bots:1"), false);
    assert.equal(access.canServeAddress(who("root", "admin"), "anything:1"), true);
  });

  it("opens command:<address> only to who may serve it, and outcomes only to publishers", async () => {
    const bot = who("5", "subscriber", { addresses: ["bots:*"], channels: ["*"] });
    const reader = who("7", "subscriber", { channels: ["*", "command:*"] });
    assert.equal(await access.canRead("test", bot, "command:bots:1"), true);
    assert.equal(await access.canRead("test", bot, "command:other:1"), false);
    assert.equal(await access.canRead("test", reader, "command:bots:1"), false, "channel patterns never grant it");
    assert.equal(await access.canRead("test", reader, "command-outcome:abc"), false);
    assert.equal(await access.canRead("test", who("1", "publisher"), "command-outcome:abc"), true);
    assert.equal(await access.canRead("test", who("root", "admin"), "command:bots:1"), true);
    assert.equal(await access.canRead("test", reader, "invoice-42"), true, "other channels are untouched");
  });
});
