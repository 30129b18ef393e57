/**
 * `tidings changes publish`: a record change from the command line reaches a subscriber of
 * its group; bad input ends with exit code 2 and a sentence, and nothing is published.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { post, runCli, serve, tempDir, type Served } from "./cli-process.js";

describe("tidings changes publish", () => {
  const dir = tempDir();
  let server: Served | undefined;
  let remote: string[] = [];
  let subscriber = "";

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test"]);
    remote = ["--url", server.url, "--data-dir", dir.path, "--db", "test"];
    const res = await runCli(["token", "--data-dir", dir.path, "--db", "test", "--user", "7", "--channels", "invoice-*"]);
    assert.equal(res.code, 0, res.stderr);
    subscriber = res.stdout.trim();
  });
  after(async () => {
    await server?.stop("SIGKILL");
    dir.remove();
  });

  it("publishes an update with its updated_fields and prints the message id the group's subscriber gets", async () => {
    const res = await runCli(["changes", "publish", ...remote, "--model", "invoice", "--type", "update", '{"id":42,"state":"paid"}', "--updated-fields", "state"]);
    assert.equal(res.code, 0, res.stderr);
    const id = res.stdout.trim();
    const got = await post(`${server!.url}/test/bus`, subscriber, { last_message: null, channels: ["invoice-42"] });
    assert.deepEqual(got.body, {
      channel: "invoice-42",
      message: {
        message_id: id,
        type: "subscription-update",
        data: { type: "update", group: "invoice-42", object: { id: 42, state: "paid", updated_fields: ["state"] } },
      },
    });
  });

  it("exits with 2 and a sentence on bad input", async () => {
    const cases: [string[], RegExp][] = [
      [["--model", "invoice", "--type", "upsert", '{"id":1}'], /--type must be create, update or delete/],
      [["--model", "invoice", "--type", "create", "[1]"], /must be a JSON object/],
      [["--model", "invoice", "--type", "create", "{nope"], /not JSON/],
      [["--model", "invoice", "--type", "create", '{"state":"x"}'], /TIDINGS_ERR_CHANGE_INVALID: .*"id"/],
      [["--model", "invoice", "--type", "create", '{"id":1}', "--updated-fields", "state"], /only for --type update/],
      [["--model", "bad\u0001", "--type", "create", '{"id":1}'], /TIDINGS_ERR_CHANGE_MODEL_INVALID/],
    ];
    for (const [args, text] of cases) {
      const res = await runCli(["changes", "publish", ...remote, ...args]);
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
      assert.match(res.stderr, text);
      assert.equal(res.stdout, "");
    }
  });
});
