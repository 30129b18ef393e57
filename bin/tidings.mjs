#!/usr/bin/env node
// Runs the compiled tree (dist/, made by `npm run build`, which `npm install` runs) when it
// is at least as new as every source; otherwise the TypeScript sources through tsx, so an
// edited checkout never runs stale code.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Newest modification time under dir, in ms. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

function builtAt() {
  try {
    return statSync(join(root, "dist/.built")).mtimeMs;
  } catch {
    return -1;
  }
}

if (process.env.TIDINGS_FROM_SOURCE !== "1" && builtAt() >= newest(join(root, "src"))) {
  await import("../dist/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
