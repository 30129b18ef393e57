import { randomUUID } from "node:crypto";
import type { CommandContext } from "./context.js";
import { TidingsError } from "../errors.js";
import type { CommandRecord } from "../stores/store.js";
import { wakeClients } from "./wake-ups.js";
import { encodeArgs, resolveDeadline, validateAddress, validateIdempotencyKey, validateMethod } from "./validation.js";

export interface SendOptions {
  /** Absolute deadline: a Date, ms since the epoch or an ISO 8601 string. @default now + commands.defaultDeadlineMs */
  readonly deadline?: Date | number | string | null;
  /** Relative deadline in milliseconds (instead of `deadline`). */
  readonly timeoutMs?: number | null;
  /** Sending again with the same key for the same address returns the first command. */
  readonly idempotencyKey?: string | null;
}

/**
 * Checks a command, stores it for `address` (or finds the first one sent with the same
 * idempotency key), times its deadline and wakes the address's clients.
 */
export async function storeCommand(
  ctx: CommandContext,
  db: string,
  address: string,
  method: string,
  args: readonly unknown[],
  options: SendOptions,
): Promise<{ readonly command: CommandRecord; readonly created: boolean }> {
  const limits = ctx.host.options.commands;
  const store = ctx.host.store;
  validateAddress(address);
  validateMethod(method);
  const argsText = encodeArgs(args, limits.maxArgsBytes);
  const idempotencyKey = validateIdempotencyKey(options.idempotencyKey);
  const now = Date.now();
  const deadline = resolveDeadline(options, now, limits.defaultDeadlineMs);
  await ctx.open(db);
  // Count then create is not atomic: concurrent senders may pass the limit by a few.
  const open = await store.countOpenCommands(db, address);
  if (open >= limits.maxOpenPerAddress) {
    // A resend (the sender retrying after a lost answer) still gets its first command back.
    const existing = idempotencyKey === null ? null : await store.findCommandByKey(db, address, idempotencyKey);
    if (existing !== null) return { command: existing, created: false };
    throw new TidingsError(
      "TIDINGS_ERR_COMMAND_TOO_MANY",
      `Address ${address} already has ${open} commands without an outcome (at most ${limits.maxOpenPerAddress}).`,
      { details: { address, max: limits.maxOpenPerAddress } },
    );
  }
  const { command, created } = await store.createCommand(db, {
    id: randomUUID(),
    address,
    method,
    args: argsText,
    deadline,
    idempotencyKey,
    now,
  });
  if (created) {
    ctx.expiry.schedule(db, deadline, now);
    await wakeClients(ctx.host, db, [{ id: command.id, address }]);
  }
  return { command, created };
}
