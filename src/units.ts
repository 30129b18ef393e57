import { TidingsError } from "./errors.js";

/**
 * The one parser of durations and of sizes, for flags, environment variables, config files
 * and the CLI's own arguments, so that `--ttl 90`, `--wait 90` and `--poll-timeout 90s`
 * follow the same rules.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * What a number without a unit means: seconds (the CLI's --ttl, --wait, --timeout),
 * milliseconds (config-file keys ending in Ms), or nothing (a server flag or environment
 * variable, where it would be ambiguous; 0 is accepted).
 */
export type BareNumber = "seconds" | "milliseconds" | "refused";

/** "250ms", "1.5s", "90s", "5m", "1h", "2d" (and a bare number as `bare` says) → milliseconds. */
export function parseDurationMs(text: string, where: string, bare: BareNumber = "refused"): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) invalid(`${where}: invalid duration ${JSON.stringify(text)}; use e.g. 500ms, 30s, 5m, 1h, 2d.`);
  const n = Number(m[1]);
  let unit = m[2];
  if (unit === undefined) {
    if (bare === "refused" && n !== 0) invalid(`${where}: ${JSON.stringify(text)} needs a unit; write ${text}s or ${text}ms.`);
    unit = bare === "seconds" ? "s" : "ms";
  }
  return Math.round(n * DURATION_UNITS[unit]!);
}

/** The shortest exact form: 300000 → "5m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"]) {
    const size = DURATION_UNITS[unit]!;
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** "65536", "64KiB", "4MiB", "1mb" → bytes (units are powers of 1024). */
export function parseBytes(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m?.[2]?.toLowerCase() ?? "";
  if (!m || BYTE_UNITS[unit] === undefined) invalid(`${where}: invalid size ${JSON.stringify(text)}; use e.g. 65536, 64KiB, 4MiB.`);
  return Math.round(Number(m[1]) * BYTE_UNITS[unit]!);
}

export function formatBytes(n: number): string {
  if (n > 0 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2}MiB`;
  if (n > 0 && n % 1024 === 0) return `${n / 1024}KiB`;
  return String(n);
}

function invalid(message: string): never {
  throw new TidingsError("TIDINGS_ERR_CONFIG", message);
}
