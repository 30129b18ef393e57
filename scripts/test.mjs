#!/usr/bin/env node
// `npm test` runs every test/*/*.test.ts; `node scripts/test.mjs <subset>` (npm run
// test:<subset>) runs the part a contributor needs, sorted by what the file uses:
//   scale-out  test/scale-out/: several real server processes per engine
//   browser    files that drive Chromium (test/helpers/browser.ts)
//   engines    test/stores/, test/faults/, and files that need PostgreSQL, Redis or trytond
//   unit       the rest: in-process, memory or SQLite only
// Extra arguments go to `node --test` (e.g. --test-name-pattern); --list prints the files.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT, filesUnder } from "./dist-state.mjs";

const ENGINE_SERVER = /storeEngines|POSTGRES_URL|REDIS_URL|postgres:\/\/|redis:\/\/|trytond/;

/** The one subset a test file belongs to. */
export function subsetOf(path, text) {
  if (path.startsWith("test/scale-out/")) return "scale-out";
  if (text.includes("helpers/browser")) return "browser";
  if (path.startsWith("test/stores/") || path.startsWith("test/faults/") || ENGINE_SERVER.test(text)) return "engines";
  return "unit";
}

const SUBSETS = ["unit", "engines", "browser", "scale-out"];
const [subset, ...extra] = process.argv.slice(2);
if (!SUBSETS.includes(subset)) {
  process.stderr.write(`usage: node scripts/test.mjs ${SUBSETS.join("|")} [node --test options]\n`);
  process.exit(2);
}
const files = filesUnder(join(ROOT, "test"))
  .map((file) => relative(ROOT, file))
  .filter((path) => /^test\/[^/]+\/[^/]+\.test\.ts$/.test(path))
  .filter((path) => subsetOf(path, readFileSync(join(ROOT, path), "utf8")) === subset)
  .sort();
if (extra.includes("--list")) {
  process.stdout.write(`${files.join("\n")}\n`);
  process.exit(0);
}
// Browsers and server fleets are heavy: one file at a time.
const concurrency = subset === "unit" || subset === "engines" ? 2 : 1;
const args = ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, "--test-timeout=600000", "--test-force-exit", ...extra, ...files];
const run = spawnSync(process.execPath, args, { cwd: ROOT, stdio: "inherit" });
process.exit(run.status ?? 1);
