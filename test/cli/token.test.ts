import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyToken } from "../../src/auth/tokens.js";
import { runCli, runCliOk, tempDir } from "./cli-process.js";

const SECRET = "cli-test-secret-cli-test-secret-0123456789";

function claims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
}

describe("tidings token", () => {
  const dir = tempDir();
  after(() => dir.remove());

  it("prints a JWT with the requested claims, signed with --secret", async () => {
    const res = await runCli(["token", "--secret", SECRET, "--db", "erp", "--user", "7", "--channels", "chat:*,invoice-{user}", "--role", "publisher", "--ttl", "30m"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = res.stdout.trim();
    const c = claims(token);
    assert.equal((c.exp as number) - (c.iat as number), 1800);
    const identity = await verifyToken(SECRET, token);
    assert.deepEqual(
      { user: identity.user, db: identity.db, role: identity.role, channels: identity.channels },
      { user: "7", db: "erp", role: "publisher", channels: ["chat:*", "invoice-{user}"] },
    );
  });

  it("takes the secret from TIDINGS_SECRET, and --secret over it", async () => {
    const fromEnv = await runCliOk(["token", "--db", "erp", "--user", "1"], { env: { TIDINGS_SECRET: SECRET } });
    assert.equal((await verifyToken(SECRET, fromEnv)).user, "1");
    const other = "another-secret-another-secret-0123456789";
    const fromFlag = await runCliOk(["token", "--secret", other, "--db", "erp", "--user", "2"], { env: { TIDINGS_SECRET: SECRET } });
    assert.equal((await verifyToken(other, fromFlag)).user, "2");
  });

  it("finds the secret file of the data directory (flag, env or config file)", async () => {
    writeFileSync(join(dir.path, "secret"), `${SECRET}\n`);
    const config = join(dir.path, "tidings.json");
    writeFileSync(config, JSON.stringify({ dataDir: dir.path }));
    for (const run of [
      runCli(["token", "--data-dir", dir.path, "--db", "erp", "--user", "3"]),
      runCli(["token", "--db", "erp", "--user", "3"], { env: { TIDINGS_DATA_DIR: dir.path } }),
      runCli(["token", "--config", config, "--db", "erp", "--user", "3"]),
    ]) {
      const res = await run;
      assert.equal(res.code, 0, res.stderr);
      assert.equal((await verifyToken(SECRET, res.stdout.trim())).user, "3");
    }
  });

  it("explains what to do when there is no secret, and rejects bad flags", async () => {
    const none = await runCli(["token", "--data-dir", join(dir.path, "empty"), "--db", "erp", "--user", "1"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /No secret: pass --secret, set TIDINGS_SECRET, or start `tidings serve`/);
    const role = await runCli(["token", "--secret", SECRET, "--db", "erp", "--user", "1", "--role", "root"]);
    assert.equal(role.code, 2);
    assert.match(role.stderr, /--role must be one of subscriber, publisher, admin/);
    const star = await runCli(["token", "--secret", SECRET, "--db", "*", "--user", "1"]);
    assert.equal(star.code, 2);
    const missing = await runCli(["token", "--secret", SECRET, "--user", "1"]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--db/);
  });
});
