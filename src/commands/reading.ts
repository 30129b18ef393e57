import type { CommandContext } from "./context.js";
import { TidingsError } from "../errors.js";
import type { CommandFilter, CommandRecord, CommandState } from "../stores/store.js";
import { notFound } from "./command-errors.js";
import { validateAddress } from "./validation.js";

export interface ListFilter {
  readonly address?: string;
  readonly states?: readonly CommandState[];
  readonly since?: number;
  readonly until?: number;
  /** @default 100 */
  readonly limit?: number;
}

export const MAX_LIST = 1000;

/** One command; a missing one is refused (404). */
export async function readCommand(ctx: CommandContext, db: string, id: string): Promise<CommandRecord> {
  await ctx.open(db);
  const c = await ctx.host.store.getCommand(db, id);
  if (c === null) throw notFound(id);
  return c;
}

/** Newest first. */
export async function listCommands(ctx: CommandContext, db: string, filter: ListFilter): Promise<CommandRecord[]> {
  if (filter.address !== undefined) validateAddress(filter.address);
  const limit = filter.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `limit must be an integer from 1 to ${MAX_LIST}.`);
  }
  await ctx.open(db);
  const f: CommandFilter = {
    limit,
    ...(filter.address !== undefined ? { address: filter.address } : {}),
    ...(filter.states !== undefined ? { states: filter.states } : {}),
    ...(filter.since !== undefined ? { since: filter.since } : {}),
    ...(filter.until !== undefined ? { until: filter.until } : {}),
  };
  return ctx.host.store.listCommands(db, f);
}
