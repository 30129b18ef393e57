/**
 * Optional engine features, each declared by a flag in `capabilities` and reached through
 * its guard, never found by looking for a method: a store built by an embedder says what
 * it offers, and the core believes it.
 */
import type postgres from "postgres";
import type { AppendEntry, Store, StoredMessage } from "./store.js";

/** The application's own transaction as a transactional engine takes it: a postgres.js transaction or pool. */
export type SqlHandle = postgres.Sql | postgres.TransactionSql;

/** `capabilities.transactional`: appends through the application's own transaction (PostgreSQL). */
export interface TransactionalStore extends Store {
  appendInTransaction(sql: SqlHandle, db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]>;
}

/** `capabilities.horizonLag`: how long committed messages may wait behind an older open transaction (PostgreSQL). */
export interface HorizonProbe {
  horizonLag(): Promise<number>;
}

/** `capabilities.otherProcesses`: whether another live process uses the store now (an SQLite file). */
export interface ProcessPresence {
  anotherProcessAlive(): Promise<boolean>;
}

export function isTransactionalStore(store: Store): store is TransactionalStore {
  return store.capabilities.transactional;
}

export function hasHorizonProbe(store: Store): store is Store & HorizonProbe {
  return store.capabilities.horizonLag === true;
}

export function hasProcessPresence(store: Store): store is Store & ProcessPresence {
  return store.capabilities.otherProcesses === true;
}
