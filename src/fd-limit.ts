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

/** Why `maxConnections` cannot be reached under `limit` (a sentence), or null when it can. */
export function connectionCapProblem(maxConnections: number, limit: FileLimit | null): string | null {
  if (limit === null || !Number.isFinite(limit.soft)) return null;
  const usable = limit.soft - RESERVED_FDS;
  if (maxConnections !== 0 && maxConnections <= usable) return null;
  const cap = maxConnections === 0 ? "no connection cap (maxConnections 0)" : `maxConnections ${maxConnections}`;
  return (
    `The open-files limit is ${limit.soft} (hard ${limit.hard}), below ${cap} plus ${RESERVED_FDS} descriptors for the store and logs: ` +
    `past about ${Math.max(0, usable)} connections, accepting fails for everyone. Raise the limit (ulimit -n, systemd LimitNOFILE) or lower maxConnections.`
  );
}
