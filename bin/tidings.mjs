#!/usr/bin/env node
// Runs the compiled tree (dist/, made by `npm run build`, which `npm install` runs) when it
// is at least as new as every source; otherwise the TypeScript sources through tsx, so an
// edited checkout never runs stale code.
import { distIsFresh } from "../scripts/dist-state.mjs";

if (process.env.TIDINGS_FROM_SOURCE !== "1" && distIsFresh()) {
  await import("../dist/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
