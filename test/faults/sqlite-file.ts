/** One SQLite file as the shared "engine" of several processes, for the scale-out scenarios. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStoreUrl } from "../../src/stores/open-store.js";
import type { StoredMessage } from "../../src/stores/store.js";
import type { Engine } from "../scale-out/engines.js";
import { DB } from "../scale-out/helpers.js";

export interface SqliteFile extends Engine {
  readonly path: string;
}

/** A fresh file in a temporary directory, removed by `close()`; or one at `path` that the caller owns. */
export function sqliteFile(path?: string): SqliteFile {
  const dir = path === undefined ? mkdtempSync(join(tmpdir(), "tidings-faults-")) : null;
  const file = path ?? join(dir!, "tidings.db");
  const storeUrl = `sqlite:${file}`;
  return {
    name: "sqlite",
    skip: false,
    storeUrl,
    path: file,
    killConnections() {
      return Promise.reject(new Error("an SQLite file has no connections to kill"));
    },
    /** Reads through a connection of its own, as another process would. */
    async read(channels: readonly string[], after: string | null): Promise<StoredMessage[]> {
      const store = await openStoreUrl(storeUrl);
      await store.open();
      try {
        const out: StoredMessage[] = [];
        for (let cursor = after; ; ) {
          const page = await store.read(DB, { after: cursor, channels, limit: 500 });
          if (page.gap) throw new Error(`the store reports a gap after ${cursor}`);
          if (page.messages.length === 0) return out;
          out.push(...page.messages);
          cursor = page.messages.at(-1)!.id;
        }
      } finally {
        await store.close();
      }
    },
    async close() {
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}
