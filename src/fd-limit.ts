import { readFileSync } from "node:fs";

/** The process's open-files limit (RLIMIT_NOFILE); Infinity for "unlimited". */
export interface FileLimit {
  readonly soft: number;
  readonly hard: number;
}

/** File descriptors kept for everything but client connections: the store, logs, the listener. */
export const RESERVED_FDS = 64;

/**
 * Reads the limit from /proc/self/limits (Linux); null where there is none. Node itself
 * raises the soft limit to the hard one at start-up, so what is read here is what the
 * process can use; only root (systemd's LimitNOFILE, `docker run --ulimit`) raises the hard one.
 */
export function readFileLimit(path = "/proc/self/limits"): FileLimit | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (m === null) return null;
  const parse = (v: string): number => (v === "unlimited" ? Infinity : Number(v));
  return { soft: parse(m[1]!), hard: parse(m[2]!) };
}

/**
 * The connection cap in force: `maxConnections`, lowered to what the open-files limit can
 * hold. Past the limit accepting fails for everyone (a reset, or nothing), and a cap under it
 * turns that into a 503 with Retry-After for the connections that do not fit.
 */
export function connectionCap(maxConnections: number, limit: FileLimit | null): number {
  if (limit === null || !Number.isFinite(limit.soft)) return maxConnections;
  const usable = Math.max(1, limit.soft - RESERVED_FDS);
  return maxConnections === 0 ? usable : Math.min(maxConnections, usable);
}

/** Why `maxConnections` cannot be reached under `limit` (a sentence), or null when it can. */
export function connectionCapProblem(maxConnections: number, limit: FileLimit | null): string | null {
  if (limit === null || !Number.isFinite(limit.soft)) return null;
  const cap = connectionCap(maxConnections, limit);
  if (cap === maxConnections) return null;
  const asked = maxConnections === 0 ? "no connection cap (maxConnections 0)" : `maxConnections ${maxConnections}`;
  return (
    `The open-files limit is ${limit.soft} (hard ${limit.hard}), below ${asked} plus ${RESERVED_FDS} descriptors for the store and logs: ` +
    `connections are capped at ${cap}, and the ones past it are answered 503. Raise the limit (ulimit -n, systemd LimitNOFILE) to allow more.`
  );
}
