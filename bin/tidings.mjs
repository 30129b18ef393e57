#!/usr/bin/env node
// An installed package runs its compiled tree (dist/). A checkout runs dist/ when it was
// built after the last change to src/ (`npm run build`; `npm start` builds first), and
// otherwise its TypeScript sources through tsx, a development dependency, so an edited
// checkout never runs stale code.
import { distIsFresh } from "../scripts/dist-state.mjs";

if (process.env.TIDINGS_FROM_SOURCE !== "1" && distIsFresh()) {
  await import("../dist/cli/main.js");
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write("tidings: dist/ is missing or older than src/, and tsx is not installed to run the sources: run `npm run build` (or `npm install`).\n");
    process.exit(2);
  }
  register();
  await import("../src/cli/main.ts");
}
