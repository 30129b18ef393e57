import { isTransactionalStore, type SqlHandle } from "../stores/capabilities.js";
import { TidingsError } from "../errors.js";
import type { TidingsOptions } from "../options.js";
import type { Store } from "../stores/store.js";
import { toAppendEntry, type PublishItem } from "./messages.js";

/** What a transactional publish needs of the bus. */
export interface TransactionalPublisher {
  readonly store: Store;
  readonly options: Pick<TidingsOptions, "maxBatch" | "maxMessageBytes">;
  /** Throws for an unknown database or a disabled bus; opens the database's log. */
  log(db: string): unknown;
}

export { isTransactionalStore, type SqlHandle, type TransactionalStore } from "../stores/capabilities.js";

/**
 * Publishes one message inside the application's PostgreSQL transaction (DESIGN §3.3):
 *
 * ```ts
 * await sql.begin(async (tx) => {
 *   await tx`UPDATE invoice SET state = 'posted' WHERE id = 42`;
 *   await publishInTransaction(bus, tx, "shop", "invoice-42", { type: "posted" });
 * });
 * ```
 *
 * The message is validated exactly as `bus.publish` does. Its id is assigned now and
 * returned at once, but nobody can read it before the transaction commits, and a rollback
 * leaves nothing. Every instance, this one included, learns of it from the store's
 * wake-up at commit. `tx` is a postgres.js transaction (or a pool: then the append is a
 * transaction of its own) connected to the database the bus's store uses.
 */
export async function publishInTransaction(
  bus: TransactionalPublisher,
  tx: SqlHandle,
  db: string,
  channel: string,
  message: unknown,
): Promise<string> {
  const [id] = await publishManyInTransaction(bus, tx, db, [{ channel, message }]);
  return id!;
}

/** Several messages in the application's transaction, in order; see publishInTransaction. */
export async function publishManyInTransaction(
  bus: TransactionalPublisher,
  tx: SqlHandle,
  db: string,
  items: readonly PublishItem[],
): Promise<string[]> {
  const store = bus.store;
  if (!isTransactionalStore(store)) {
    throw new TidingsError(
      "TIDINGS_ERR_CONFIG",
      `The ${store.engine} store cannot publish inside an application transaction: transactional publish needs store postgres://….`,
    );
  }
  if (items.length === 0) return [];
  if (items.length > bus.options.maxBatch) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `At most ${bus.options.maxBatch} messages per publish.`);
  }
  // Unknown database (404) or bus disabled (501), as for bus.publish; it also makes sure
  // this instance has the log open, so that the wake-up at commit refreshes it.
  bus.log(db);
  const entries = items.map((i) => toAppendEntry(i.channel, i.message, bus.options.maxMessageBytes));
  const stored = await store.appendInTransaction(tx, db, entries);
  return stored.map((m) => m.id);
}
