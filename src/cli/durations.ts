import { parseDurationMs } from "../units.js";
import { CliError } from "./remote.js";

/** A CLI duration argument (--ttl, --wait, --timeout) in seconds: `90`, `90s`, `1.5m`, `2h`, `250ms`; a usage error (exit 2) otherwise. */
export function cliSeconds(text: string, where: string): number {
  try {
    return parseDurationMs(text, where, "seconds") / 1000;
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}
