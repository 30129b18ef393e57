/** The connection died under the query (killed backend, server restart, network). */
function connectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return ["ECONNRESET", "EPIPE", "CONNECTION_CLOSED", "57P01", "57P02", "57P03"].includes(code) || code.startsWith("08");
}

/**
 * Runs a read-only query again when its connection was lost: the pool reconnects on the
 * next attempt. Writes are never retried (they may have committed). A restart or
 * `pg_terminate_backend` kills many pooled connections in one stroke, and the pool learns
 * of each as its socket closes: waiting a little longer before each attempt (10, 20, 40,
 * 80 ms) lets it notice them all rather than hand out the next dead one.
 */
export async function retryReads<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if (i >= attempts || !connectionLost(err)) throw err;
      await new Promise((r) => setTimeout(r, 10 * 2 ** (i - 1)));
    }
  }
}
