import type { CommandContext } from "./context.js";
import { FINAL_COMMAND_STATES, type CommandOutcome, type CommandRecord } from "../stores/store.js";
import { alreadyFinal, notFound, notYours, whyRefused } from "./command-errors.js";
import { announceFinal } from "./wake-ups.js";

/**
 * The changes of a command's state after it was sent: delivered → running by its claimer,
 * to a final state by the client's outcome, by cancelling or by its deadline. Each final
 * state is announced to waiters (and, when the client did not end it, to the clients).
 */

/** delivered → running, by its claimer. */
export async function startCommand(ctx: CommandContext, db: string, id: string, claimer: string): Promise<CommandRecord> {
  await ctx.open(db);
  const c = await ctx.host.store.startCommand(db, id, claimer, Date.now());
  if (c !== null) return c;
  throw await whyRefused(ctx.host.store, db, id);
}

/** Records the client's outcome; the first recorded outcome wins, later ones are refused. */
export async function completeCommand(
  ctx: CommandContext,
  db: string,
  id: string,
  claimer: string,
  outcome: CommandOutcome,
): Promise<CommandRecord> {
  await ctx.open(db);
  const { command, changed } = await ctx.host.store.finishCommand(db, id, outcome, claimer, Date.now());
  if (command === null) throw notFound(id);
  if (!changed) throw FINAL_COMMAND_STATES.has(command.state) ? alreadyFinal(command) : notYours(id);
  await announceFinal(ctx.host, db, [command], false);
  return command;
}

/** Cancels a command without an outcome; one that already has one is refused (409). */
export async function cancelCommand(ctx: CommandContext, db: string, id: string): Promise<CommandRecord> {
  await ctx.open(db);
  const { command, changed } = await ctx.host.store.finishCommand(db, id, { state: "cancelled" }, null, Date.now());
  if (command === null) throw notFound(id);
  if (!changed) throw alreadyFinal(command);
  await announceFinal(ctx.host, db, [command], true);
  return command;
}

/** Expires what is past its deadline in `db` at `now`; failures are logged (the next sweep retries). */
export async function expireDue(ctx: CommandContext, db: string, now: number): Promise<void> {
  if (ctx.closed) return;
  try {
    const expired = await ctx.host.store.expireCommands(db, now);
    if (expired.length > 0) await announceFinal(ctx.host, db, expired, true);
  } catch (e) {
    ctx.host.logger.error({ err: e, db }, "command expiry failed");
  }
}
