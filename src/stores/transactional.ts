import type postgres from "postgres";
import type { AppendEntry, Store, StoredMessage } from "./store.js";

/** The application's own transaction as a transactional engine takes it: a postgres.js transaction or pool. */
export type SqlHandle = postgres.Sql | postgres.TransactionSql;

/**
 * The optional capability of appending through the application's own transaction
 * (PostgreSQL): declared by `capabilities.transactional`, checked by `isTransactionalStore`.
 */
export interface TransactionalStore extends Store {
  appendInTransaction(sql: SqlHandle, db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]>;
}

export function isTransactionalStore(store: Store): store is TransactionalStore {
  return (
    store.capabilities.transactional &&
    typeof (store as Partial<TransactionalStore>).appendInTransaction === "function"
  );
}
