import { TidingsError } from "../errors.js";
import { FINAL_COMMAND_STATES, type CommandRecord, type Store } from "../stores/store.js";

/** The refusals a command operation answers with, each with its catalogued code. */

export function notFound(id: string): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_NOT_FOUND", `No command ${JSON.stringify(id.slice(0, 100))}.`, {
    details: { id: id.slice(0, 100) },
  });
}

export function alreadyFinal(c: CommandRecord): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_FINAL", `Command ${c.id} is already ${c.state}.`, {
    details: { id: c.id, state: c.state },
  });
}

export function notYours(id: string): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_NOT_YOURS", `Command ${id} is not held by this client.`, {
    details: { id },
  });
}

/** Why the store refused a change of `id`: it is gone, already final, or held by another claimer. */
export async function whyRefused(store: Store, db: string, id: string): Promise<TidingsError> {
  const c = await store.getCommand(db, id);
  if (c === null) return notFound(id);
  if (FINAL_COMMAND_STATES.has(c.state)) return alreadyFinal(c);
  return notYours(id);
}
