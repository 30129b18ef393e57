import type Database from "better-sqlite3";
import type { ClaimPolicy } from "../store.js";

/** Ownership claims of `client:<id>` channels (the contract is `Store.claimOwner`). */
export class SqliteOwners {
  private readonly current;
  private readonly renew;
  private readonly record;
  private readonly dropLapsed;
  private readonly dropLeastRecent;
  private readonly trimLapsed;
  /** One write transaction: other processes on the file see a claim whole or not at all. */
  readonly claim: (db: string, key: string, owner: string, policy: ClaimPolicy) => string;

  constructor(sql: Database.Database) {
    this.current = sql.prepare<[string, string], { owner: string; expires_at: number }>(
      "SELECT owner, expires_at FROM owners WHERE db = ? AND key = ?",
    );
    this.renew = sql.prepare<[number, string, string]>("UPDATE owners SET expires_at = ? WHERE db = ? AND key = ?");
    this.record = sql.prepare<[string, string, string, number]>(
      `INSERT INTO owners (db, key, owner, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (db, key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
    );
    this.dropLapsed = sql.prepare<[string, string, number]>("DELETE FROM owners WHERE db = ? AND owner = ? AND expires_at <= ?");
    // The new claim plus the owner's `max - 1` most recently renewed others stay.
    this.dropLeastRecent = sql.prepare<[string, string, string, string, string, number]>(
      `DELETE FROM owners WHERE db = ? AND owner = ? AND key IN (
         SELECT key FROM owners WHERE db = ? AND owner = ? AND key <> ?
         ORDER BY expires_at DESC, key DESC LIMIT -1 OFFSET ?)`,
    );
    this.trimLapsed = sql.prepare<[string, number]>("DELETE FROM owners WHERE db = ? AND expires_at <= ?");
    const claim = sql.transaction((db: string, key: string, owner: string, { now, ttlMs, maxPerOwner }: ClaimPolicy): string => {
      const row = this.current.get(db, key);
      if (row !== undefined && row.expires_at > now) {
        if (row.owner === owner) this.renew.run(now + ttlMs, db, key);
        return row.owner;
      }
      this.record.run(db, key, owner, now + ttlMs);
      this.dropLapsed.run(db, owner, now);
      this.dropLeastRecent.run(db, owner, db, owner, key, maxPerOwner - 1);
      return owner;
    });
    this.claim = (db, key, owner, policy) => claim.immediate(db, key, owner, policy);
  }

  trim(db: string, now: number): number {
    return this.trimLapsed.run(db, now).changes;
  }
}
