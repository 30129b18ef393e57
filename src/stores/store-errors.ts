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
