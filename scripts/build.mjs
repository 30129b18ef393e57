#!/usr/bin/env node
// Compiles src/ to plain JavaScript in dist/, file for file, so `tidings serve` runs
// without a TypeScript loader in the process (tsx costs ~35 MB of RSS and CPU on load).
// dist/ mirrors src/ at the same depth, so paths read relative to a module
// (SQL, Lua, web/admin.html, package.json) resolve the same from either tree.
// Type checking is `npm run typecheck`; this only strips types.
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "src");
const DIST = join(ROOT, "dist");

/** Every file under dir, as paths. */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

const files = walk(SRC);
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
for (const asset of assets) {
  const target = join(DIST, relative(SRC, asset));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(asset, target);
}
// Written last: bin/tidings.mjs runs dist/ only when this is newer than every source.
writeFileSync(join(DIST, ".built"), `${new Date().toISOString()}\n`);
