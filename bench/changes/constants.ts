/** Shared by the processes of bench/changes and bench/reconnect-storm. */
export const BENCH_SECRET = "bench-changes-secret-bench-changes-secret-0123";
export const BENCH_DB = "bench";

/** Epoch milliseconds with sub-millisecond precision, comparable across the machine's processes. */
export const epochMs = (): number => performance.timeOrigin + performance.now();
