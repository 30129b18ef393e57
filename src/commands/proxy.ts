import { TidingsError } from "../errors.js";
import type { CommandRecord } from "../stores/store.js";
import type { CommandService, SendOptions } from "./service.js";
import { validateAddress } from "./validation.js";

/** Every property is a method of the client: calling it sends a command and awaits its result. */
export type CommandProxy = { readonly [method: string]: (...args: unknown[]) => Promise<unknown> };

/**
 * The RPC-like form of the seed (`proxy.triggerMasterRequests()`): a call sends the command
 * and resolves with the client's return value, or rejects with a TidingsError whose code
 * says why (COMMAND_FAILED with the client's error, COMMAND_EXPIRED, COMMAND_CANCELLED).
 */
export function createProxy(service: CommandService, db: string, address: string, options: SendOptions = {}): CommandProxy {
  validateAddress(address);
  return new Proxy({} as CommandProxy, {
    get(_target, prop) {
      // Not a thenable (so `await proxy` does not hang), and no symbols (inspection, coercion).
      if (typeof prop !== "string" || prop === "then" || prop === "toJSON") return undefined;
      return async (...args: unknown[]): Promise<unknown> => {
        const sent = await service.send(db, address, prop, args, options);
        return outcomeValue(await sent.outcome);
      };
    },
  });
}

/** The return value of a succeeded command; throws for every other final state. */
export function outcomeValue(c: CommandRecord): unknown {
  const details = { id: c.id, address: c.address, method: c.method, state: c.state };
  switch (c.state) {
    case "succeeded":
      return c.result === null ? null : (JSON.parse(c.result) as unknown);
    case "failed":
      throw new TidingsError("TIDINGS_ERR_COMMAND_FAILED", c.error?.message ?? "The client reported an error.", {
        details: { ...details, error: c.error },
      });
    case "expired":
      throw new TidingsError("TIDINGS_ERR_COMMAND_EXPIRED", `Command ${c.method} to ${c.address} expired without an outcome.`, {
        details,
      });
    case "cancelled":
      throw new TidingsError("TIDINGS_ERR_COMMAND_CANCELLED", `Command ${c.method} to ${c.address} was cancelled.`, { details });
    default:
      throw new TidingsError("TIDINGS_ERR_INTERNAL", `Command ${c.id} is still ${c.state}.`, { details });
  }
}
