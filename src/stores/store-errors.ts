import { TidingsError } from "../errors.js";
import type { Store } from "./store.js";

/** Where a URL keeps its secrets, masked for logs and messages. */
export function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]+)@/, "//$1:***@");
}

/** What a sentence names a store by: `host:port` of a network store, the file of SQLite. */
export function storeLocation(url: string): string {
  if (url.startsWith("sqlite:")) return `the SQLite file ${url.slice("sqlite:".length) || "./data/tidings.db"}`;
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol.startsWith("redis") ? "6379" : u.protocol.startsWith("postgres") ? "5432" : "");
    return `${u.hostname || "localhost"}${port ? `:${port}` : ""}`;
  } catch {
    return redactStoreUrl(url);
  }
}

/**
 * Opens a store and turns any failure into one sentence naming where the store is (never its
 * password): a store that cannot be reached at start is TIDINGS_ERR_STORE_UNAVAILABLE.
 * `url` is undefined for a store instance an embedder built itself.
 */
export async function openStoreOrExplain(store: Store, url: string | undefined): Promise<void> {
  try {
    await store.open();
  } catch (e) {
    if (e instanceof TidingsError) throw e;
    if (url !== undefined && (e instanceof URIError || (e as { code?: unknown }).code === "ERR_INVALID_URL")) throw invalidStoreUrl(url, e);
    const where = url === undefined ? `the ${store.engine} store` : `the ${store.engine} store at ${storeLocation(url)} (${redactStoreUrl(url)})`;
    // Close what open() may have started (reconnect timers, sockets), so the process can exit.
    await store.close().catch(() => {});
    throw new TidingsError("TIDINGS_ERR_STORE_UNAVAILABLE", `Cannot open ${where}: ${reason(e)}. Check that it is running and reachable, and the URL.`, {
      cause: e,
    });
  }
}

function reason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\.$/, "") || (e as { code?: string }).code || "unknown error";
}

/** A bad store URL (the driver could not parse it): a configuration error naming the URL, redacted. */
export function invalidStoreUrl(url: string, cause: unknown): TidingsError {
  return new TidingsError("TIDINGS_ERR_CONFIG", `Invalid store URL ${redactStoreUrl(url)}: ${reason(cause)}.`, { cause });
}

/** Socket failures of any driver, and PostgreSQL's (postgres.js codes and SQLSTATEs) that mean the server went away. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN",
  "CONNECTION_CLOSED", "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT",
  // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
  "57P01", "57P02", "57P03", "53300",
]);

/**
 * A store operation that failed because the store cannot be reached, rather than because of
 * the request: the engine is down, restarting or out of connections (PostgreSQL), Redis gave
 * up retrying the command, or another process held SQLite's write lock past busy_timeout.
 * That is 503 TIDINGS_ERR_STORE_UNAVAILABLE (retry), not 500; null for any other failure.
 * The message names no host: the cause, logged by the server, does.
 */
export function storeUnavailable(e: unknown, engine: string): TidingsError | null {
  if (e instanceof TidingsError || typeof e !== "object" || e === null) return null;
  const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
  const lost =
    (typeof code === "string" && (CONNECTION_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || code.startsWith("SQLITE_BUSY"))) ||
    name === "MaxRetriesPerRequestError" ||
    (typeof message === "string" && (message === "Connection is closed." || message.startsWith("Stream isn't writeable")));
  if (!lost) return null;
  return new TidingsError("TIDINGS_ERR_STORE_UNAVAILABLE", `The ${engine} store cannot be reached now. Retry shortly.`, { cause: e });
}
