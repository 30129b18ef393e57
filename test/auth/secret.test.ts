import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { loadSecret } from "../../src/auth/secret.js";
import { TidingsError } from "../../src/errors.js";
import { runCli, tempDir } from "../cli/cli-process.js";

const SECRET_MODULE = new URL("../../src/auth/secret.ts", import.meta.url).href;

type Seen = string | null | { error: string };

/**
 * Threads that each call loadSecret (creating, or only reading) on the same fresh directory at
 * the same moment, once per directory of `dirs`; returns what each call saw, per directory.
 */
async function race(dirs: readonly string[], creators: number, readers: number): Promise<Seen[][]> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const code = `
    const { workerData, parentPort } = require("node:worker_threads");
    import("tsx/esm/api").then(({ register }) => register()).then(() => import(workerData.module)).then(({ loadSecret }) => {
      parentPort.postMessage("ready");
      workerData.dirs.forEach((dir, round) => {
        Atomics.wait(workerData.gate, 0, round); // released together, once per round
        const out = [];
        for (let i = 0; i < 20; i++) {
          try { out.push(loadSecret(undefined, dir, workerData.create)); }
          catch (e) { out.push({ error: String(e.message) }); }
        }
        parentPort.postMessage(out);
      });
    }, (e) => parentPort.postMessage({ failed: String(e) }));`;
  const workers = Array.from(
    { length: creators + readers },
    (_, i) => new Worker(code, { eval: true, workerData: { module: SECRET_MODULE, dirs, create: i < creators, gate } }),
  );
  const next = (w: Worker, what: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      // Generous: six threads share two cores with the rest of the suite.
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`a secret thread did not report ${what} within 60 s`));
      }, 60_000);
      const failed = (e: Error): void => {
        stop();
        reject(e);
      };
      // A thread gone without an error would otherwise only show as the timeout.
      const exited = (code: number): void => failed(new Error(`a secret thread exited (code ${code}) before reporting ${what}`));
      const stop = (): void => {
        clearTimeout(timer);
        w.off("error", failed);
        w.off("exit", exited);
      };
      w.once("message", (m: unknown) => {
        stop();
        if (typeof m === "object" && m !== null && "failed" in m) reject(new Error(String(m.failed)));
        else resolve(m);
      });
      w.once("error", failed);
      w.once("exit", exited);
    });
  try {
    await Promise.all(workers.map((w) => next(w, "ready")));
    const rounds: Seen[][] = [];
    for (let round = 0; round < dirs.length; round++) {
      const done = workers.map((w) => next(w, `round ${round}`));
      Atomics.store(gate, 0, round + 1);
      Atomics.notify(gate, 0);
      rounds.push(((await Promise.all(done)) as Seen[][]).flat());
    }
    return rounds;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

describe("the generated secret (data directory)", () => {
  it("is one secret for instances and readers racing to create and read it, never empty or partial", async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    const dirs = Array.from({ length: 30 }, (_, i) => join(dir.path, `data-${i}`));
    const rounds = await race(dirs, 4, 2);
    rounds.forEach((seen, round) => {
      const written = readFileSync(join(dirs[round]!, "secret"), "utf8").trim();
      assert.ok(written.length >= 32);
      for (const s of seen) assert.ok(s === null || s === written, `round ${round}: got ${JSON.stringify(s)}, the file holds ${written}`);
      assert.deepEqual(readdirSync(dirs[round]!), ["secret"], "no temporary file is left behind");
      assert.equal(statSync(join(dirs[round]!, "secret")).mode & 0o777, 0o600);
    });
  });

  it("refuses an empty secret file with a sentence, in the API, `tidings token` and `tidings serve`", async (t) => {
    const dir = tempDir();
    t.after(() => dir.remove());
    writeFileSync(join(dir.path, "secret"), "");
    assert.throws(
      () => loadSecret(undefined, dir.path, true),
      (e: unknown) => e instanceof TidingsError && e.code === "TIDINGS_ERR_CONFIG" && /secret file .* is empty/.test(e.message),
    );
    const token = await runCli(["token", "--data-dir", dir.path, "--db", "test", "--user", "7"]);
    assert.equal(token.code, 2, token.stderr);
    assert.equal(token.stdout, "");
    assert.match(token.stderr, /^tidings: TIDINGS_ERR_CONFIG: The secret file .*secret is empty .*delete it/);
    const serve = await runCli(["serve", "--data-dir", dir.path, "--store", "memory:", "--port", "0"]);
    assert.equal(serve.code, 2, serve.stderr);
    assert.match(serve.stderr, /The secret file .*secret is empty/);
  });
});
