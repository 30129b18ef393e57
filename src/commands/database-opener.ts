import type { CommandHost } from "./host.js";
import type { ExpiryScheduler } from "./expiry.js";
import { TidingsError } from "../errors.js";
import { hasProcessPresence } from "../stores/capabilities.js";

/**
 * Prepares each database before its first command operation: checks it is served, starts
 * its deadline sweep, and on a store that is not shared releases, once, the claims left by
 * this process's previous life when no other process uses the store: their connections are
 * gone for sure.
 */
export class DatabaseOpener {
  private readonly opened = new Map<string, Promise<void>>();

  constructor(
    private readonly host: CommandHost,
    private readonly expiry: ExpiryScheduler,
    private readonly isClosed: () => boolean,
  ) {}

  open(db: string): Promise<void> {
    if (this.isClosed()) return Promise.reject(new TidingsError("TIDINGS_ERR_SHUTTING_DOWN"));
    this.host.log(db);
    let p = this.opened.get(db);
    if (p === undefined) {
      p = this.host.store.capabilities.shared ? Promise.resolve() : this.releaseStale(db);
      this.opened.set(db, p);
      p.catch(() => {
        if (this.opened.get(db) === p) this.opened.delete(db);
      });
      this.expiry.track(db);
    }
    return p;
  }

  private async releaseStale(db: string): Promise<void> {
    const store = this.host.store;
    // Another server on the same SQLite file may hold these claims for live connections.
    if (hasProcessPresence(store) && (await store.anotherProcessAlive())) return;
    for (;;) {
      const held = await store.listCommands(db, { states: ["delivered", "running"], limit: 1000 });
      const claimers = new Set(held.map((c) => c.claimedBy).filter((c): c is string => c !== null));
      if (claimers.size === 0) return;
      for (const claimer of claimers) await store.releaseClaims(db, claimer);
    }
  }
}
