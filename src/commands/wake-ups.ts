import type { CommandHost, HintItem } from "./host.js";
import type { CommandRecord } from "../stores/store.js";
import { addressChannel, FINAL_TYPE, OUTCOME_TYPE, outcomeChannel, WAKE_TYPE } from "../protocol/commands.js";

/**
 * The hints commands publish on the log so that any instance's clients and waiters wake:
 * `command` on `command:<address>` when one is (again) pending, `command-outcome` on
 * `command-outcome:<id>` and `command-final` on `command:<address>` when one ends.
 */

/** Publishes wake-ups; a failure is logged, not thrown: the store already holds the truth. */
export async function hint(host: CommandHost, db: string, items: readonly HintItem[]): Promise<void> {
  const batch = Math.max(1, host.options.maxBatch);
  for (let i = 0; i < items.length; i += batch) {
    try {
      await host.publishMany(db, items.slice(i, i + batch));
    } catch (e) {
      host.logger.warn({ err: e, db }, "command wake-up not published; clients and waiters recheck on their timers");
    }
  }
}

/** Wakes the clients of each address: `id` is pending there (null: something may be). */
export function wakeClients(host: CommandHost, db: string, wake: Iterable<{ readonly id: string | null; readonly address: string }>): Promise<void> {
  const items: HintItem[] = [];
  for (const w of wake) items.push({ channel: addressChannel(w.address), message: { type: WAKE_TYPE, data: w.id } });
  return hint(host, db, items);
}

/**
 * Announces final commands to their waiters and, for those the client did not finish
 * itself (cancelled, expired), to the clients of their address, which may stop them.
 */
export function announceFinal(host: CommandHost, db: string, commands: readonly CommandRecord[], toClients: boolean): Promise<void> {
  const items: HintItem[] = [];
  for (const c of commands) {
    items.push({ channel: outcomeChannel(c.id), message: { type: OUTCOME_TYPE, data: { id: c.id, state: c.state } } });
    if (toClients) {
      items.push({ channel: addressChannel(c.address), message: { type: FINAL_TYPE, data: { id: c.id, state: c.state } } });
    }
  }
  return hint(host, db, items);
}
