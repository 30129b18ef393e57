/**
 * A store URL each engine cannot use: `tidings serve` prints one sentence with the error
 * code and exits 2, never a stack trace, never hangs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runCli, tempDir } from "../cli/cli-process.js";

const CASES: { url: string; code: string; says: RegExp }[] = [
  { url: "sqlite:/proc/no-such-dir/t.db", code: "TIDINGS_ERR_STORE_UNAVAILABLE", says: /the SQLite file \/proc\/no-such-dir\/t\.db/ },
  { url: "postgres://127.0.0.1:5432/test?schema=Not-A-Schema", code: "TIDINGS_ERR_CONFIG", says: /schema name "Not-A-Schema"/ },
  { url: "postgres://127.0.0.1:1/test", code: "TIDINGS_ERR_STORE_UNAVAILABLE", says: /at 127\.0\.0\.1:1 / },
  { url: "postgres://127.0.0.1:5432/test?max=2", code: "TIDINGS_ERR_CONFIG", says: /pool size/ },
  { url: "redis://127.0.0.1:6379/not-a-number", code: "TIDINGS_ERR_CONFIG", says: /path "\/not-a-number" must be a database number/ },
  { url: "redis://127.0.0.1:1", code: "TIDINGS_ERR_STORE_UNAVAILABLE", says: /at 127\.0\.0\.1:1 / },
  { url: "redis://:99999", code: "TIDINGS_ERR_CONFIG", says: /Invalid store URL/ },
];

describe("a store URL that cannot be used", () => {
  it("stops `tidings serve` with one sentence and exit 2, for every engine", async () => {
    const dir = tempDir();
    try {
      await Promise.all(
        CASES.map(async ({ url, code, says }) => {
          const res = await runCli(["serve", "--data-dir", dir.path, "--store", url, "--port", "0"], { timeoutMs: 60_000 });
          assert.equal(res.code, 2, `${url}: ${res.stderr}`);
          const lines = res.stderr.trim().split("\n");
          assert.equal(lines.length, 1, `${url}: one line, no stack: ${res.stderr}`);
          assert.match(lines[0]!, new RegExp(`^tidings: ${code}: `), url);
          assert.match(lines[0]!, says, url);
        }),
      );
    } finally {
      dir.remove();
    }
  });
});
