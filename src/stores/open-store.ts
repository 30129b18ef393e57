import type { Store } from "./store.js";
import { TidingsError } from "../errors.js";
import { MemoryStore } from "./memory/index.js";
import { invalidStoreUrl } from "./store-errors.js";

export { redactStoreUrl } from "./store-errors.js";

/**
 * Picks an engine by URL: `memory:`, `sqlite:<path>` (a file; `sqlite::memory:` for a
 * throwaway one), `postgres://…` / `postgresql://…`, `redis://…` / `rediss://…`.
 * Engines load on demand so that an installation uses only the driver it needs.
 */
export async function openStoreUrl(url: string): Promise<Store> {
  try {
    return await storeForUrl(url);
  } catch (e) {
    // new URL() and the drivers throw TypeError / URIError on a malformed URL.
    throw e instanceof TidingsError ? e : invalidStoreUrl(url, e);
  }
}

async function storeForUrl(url: string): Promise<Store> {
  if (url === "memory:" || url === "memory") return new MemoryStore();
  if (url.startsWith("sqlite:")) {
    const { SqliteStore } = await import("./sqlite/index.js");
    return new SqliteStore({ path: url.slice("sqlite:".length) || "./data/tidings.db" });
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { PostgresStore } = await import("./postgres/index.js");
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema") ?? undefined;
    parsed.searchParams.delete("schema");
    return new PostgresStore({ url: parsed.toString(), ...(schema ? { schema } : {}) });
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) {
    const { RedisStore } = await import("./redis/index.js");
    const parsed = new URL(url);
    const prefix = parsed.searchParams.get("prefix") ?? undefined;
    parsed.searchParams.delete("prefix");
    return new RedisStore({ url: parsed.toString(), ...(prefix ? { prefix } : {}) });
  }
  throw new TidingsError(
    "TIDINGS_ERR_CONFIG",
    `Unknown store ${JSON.stringify(url)}: use memory:, sqlite:<path>, postgres://… or redis://…`,
  );
}
