// Where the compiled tree lives and whether it is current: shared by the build, by
// bin/tidings.mjs (which runs dist/ only when it is) and by the test of the compiled tree.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SRC = join(ROOT, "src");
export const DIST = join(ROOT, "dist");
/** Written last by the build: its time is when dist/ was complete. */
export const BUILT_STAMP = join(DIST, ".built");

/** Every file under dir, as paths. */
export function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/** Whether this is a checkout (src/ present), not an installed package (dist/ only). */
export function isCheckout() {
  return existsSync(SRC);
}

/** Whether dist/ was built after the last change to any file in src/ (always, in an installed package). */
export function distIsFresh() {
  let builtAt;
  try {
    builtAt = statSync(BUILT_STAMP).mtimeMs;
  } catch {
    return false;
  }
  return !isCheckout() || filesUnder(SRC).every((file) => statSync(file).mtimeMs <= builtAt);
}
