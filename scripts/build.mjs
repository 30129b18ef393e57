#!/usr/bin/env node
// Compiles src/ to plain JavaScript in dist/, file for file, so `tidings serve` runs
// without a TypeScript loader in the process (tsx costs ~35 MB of RSS and CPU on load).
// dist/ mirrors src/ at the same depth, so paths read relative to a module
// (SQL, Lua, web/admin.html, package.json) resolve the same from either tree.
// Type checking is `npm run typecheck`; this strips types, emits the declarations the
// package's `types` point at (tsconfig.build.json), and bundles the browser SDK that
// `GET /client.js` serves (dist/browser/client.js), so no build tool runs in production.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { BROWSER_SDK_OPTIONS } from "./browser-sdk.mjs";
import { BUILT_STAMP, DIST, ROOT, SRC, filesUnder } from "./dist-state.mjs";

const files = filesUnder(SRC);
const sources = files.filter((file) => file.endsWith(".ts"));
const assets = files.filter((file) => !file.endsWith(".ts"));

rmSync(DIST, { recursive: true, force: true });
await build({
  entryPoints: sources,
  outdir: DIST,
  outbase: SRC,
  bundle: false,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
});
await build({ ...BROWSER_SDK_OPTIONS, outfile: join(DIST, "browser", "client.js") });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.build.json")], { stdio: "inherit" });
for (const asset of assets) {
  const target = join(DIST, relative(SRC, asset));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(asset, target);
}
// Written last: bin/tidings.mjs runs dist/ only when this is newer than every source.
writeFileSync(BUILT_STAMP, `${new Date().toISOString()}\n`);
