import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

/** Debian's Chromium: no npm package downloads a browser here. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

// Without the background-networking flags Chromium keeps dialling hosts this closed network refuses.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A reason to skip browser suites where Chromium is missing; under CI they must run (and fail). */
export const chromiumSkip: string | false =
  !existsSync(CHROMIUM_PATH) && process.env.CI !== "true"
    ? `Chromium not installed at ${CHROMIUM_PATH} (apt-get install chromium; .ci/run does)`
    : false;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
