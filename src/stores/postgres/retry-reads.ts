/** The connection died under the query (killed backend, server restart, network). */
function connectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return ["ECONNRESET", "EPIPE", "CONNECTION_CLOSED", "57P01", "57P02", "57P03"].includes(code) || code.startsWith("08");
}

/**
 * Runs a read-only query again when its connection was lost: the pool reconnects on the
 * next attempt. Writes are never retried (they may have committed).
 */
export async function retryReads<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if (i >= attempts || !connectionLost(err)) throw err;
    }
  }
}
