import type { CommandContext } from "./context.js";
import type { CommandRecord } from "../stores/store.js";
import { wakeClients } from "./wake-ups.js";

/**
 * The client's side of commands, whatever its wire: claims under a lease, renewal, release,
 * and the log position to listen for wake-ups from.
 */

/**
 * Takes up to `limit` commands of `address` for `claimer` under a lease: pending ones, and
 * those whose previous claimer vanished. Commands already past their deadline are expired
 * instead of delivered.
 */
export async function claimCommands(ctx: CommandContext, db: string, address: string, claimer: string, limit: number): Promise<CommandRecord[]> {
  await ctx.open(db);
  if (limit <= 0) return [];
  const now = Date.now();
  const got = await ctx.host.store.claimCommands(db, address, claimer, limit, now, ctx.host.options.commands.leaseMs);
  if (got.some((c) => c.deadline !== null && c.deadline <= now)) {
    await ctx.expiry.run(db);
    return got.filter((c) => c.deadline === null || c.deadline > now);
  }
  return got;
}

/** Extends the leases of what `claimer` holds. */
export async function renewClaims(ctx: CommandContext, db: string, claimer: string): Promise<number> {
  await ctx.open(db);
  return ctx.host.store.renewClaims(db, claimer, Date.now(), ctx.host.options.commands.leaseMs);
}

/**
 * Puts back to pending what `claimer` holds (its client went away) and wakes the other
 * clients of those addresses. `wake` names the commands and addresses known to be held.
 */
export async function releaseClaims(
  ctx: CommandContext,
  db: string,
  claimer: string,
  wake: Iterable<{ readonly id: string | null; readonly address: string }>,
): Promise<number> {
  // No open(): claimers release while the service closes, before the store does.
  const n = await ctx.host.store.releaseClaims(db, claimer);
  if (n > 0) await wakeClients(ctx.host, db, wake);
  return n;
}

/** The log's head for `db` before a claim: polling `command:<address>` after it misses no wake-up. */
export async function claimCursor(ctx: CommandContext, db: string): Promise<string | null> {
  const log = ctx.host.log(db);
  await log.ready;
  return log.head;
}
