import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { distIsFresh } from "../../scripts/dist-state.mjs";
import { post, runCli, runCliOk, serve, tempDir, type Served } from "./cli-process.js";

// `npm install` builds dist/; a checkout edited since then runs from source (tested everywhere else).
const skip = distIsFresh() ? false : "dist/ is missing or older than src/: run `npm run build`";

describe("the compiled tree (dist/)", { skip }, () => {
  const dir = tempDir();
  let server: Served | undefined;

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test"]);
  });
  after(async () => {
    await server?.stop("SIGKILL");
    dir.remove();
  });

  it("is what `tidings serve` runs, without a TypeScript loader", () => {
    const listening = server!.logs.find((l) => l.msg === "tidings listening")!;
    assert.equal(listening.runtime, "compiled");
  });

  it("serves the SQLite store (its SQL files travel with it) and the admin page", async () => {
    const published = await runCli(["publish", "--url", server!.url, "--data-dir", dir.path, "--db", "test", "--channel", "user:3", '{"type":"built"}']);
    assert.equal(published.code, 0, published.stderr);
    const token = await runCliOk(["token", "--data-dir", dir.path, "--db", "test", "--user", "3"]);
    const res = await post(`${server!.url}/test/bus`, token, { last_message: null, channels: ["user:3"] });
    assert.deepEqual(res.body, { channel: "user:3", message: { message_id: published.stdout.trim(), type: "built" } });
    const admin = await fetch(`${server!.url}/admin`);
    assert.equal(admin.status, 200);
    assert.match(await admin.text(), /<html/i);
  });
});
