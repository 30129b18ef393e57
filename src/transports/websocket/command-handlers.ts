import type { AccessControl } from "../../core/access.js";
import type { HandlerRegistry, HandlerRequest } from "../../core/handlers.js";
import { TidingsError } from "../../errors.js";
import type { TidingsOptions } from "../../options.js";
import { FRAME } from "../../protocol/commands.js";
import type { CommandService } from "../../commands/service.js";
import { parseOutcome } from "../../commands/validation.js";
import { ADDRESS_DATA } from "../../protocol/command-bodies.js";
import { parseWire } from "../../protocol/validate.js";
import { CommandConnections } from "./command-wire.js";

/** What the command frames need: where to register, who may serve, and the commands. */
export interface CommandWireDeps {
  readonly handlers: HandlerRegistry;
  readonly access: AccessControl;
  readonly commands: CommandService;
  readonly options: TidingsOptions;
}

/**
 * The command frames of the WebSocket wire (docs/protocol/commands.md), registered as
 * handlers like any application's: `command-register` / `command-unregister` {address},
 * then `command-started` and `command-result` whose `id` is the command id.
 */
export function registerCommandHandlers(bus: CommandWireDeps): void {
  const connections = new CommandConnections(bus.commands);

  function addressOf(req: HandlerRequest): string {
    return parseWire(ADDRESS_DATA, req.data, "data").address;
  }

  function commandId(req: HandlerRequest): string {
    if (typeof req.id !== "string" || req.id.length === 0 || req.id.length > 100) {
      throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", "The frame's id must be the command id (a string).");
    }
    return req.id;
  }

  bus.handlers.register(FRAME.register, async (ctx, req) => {
    const who = ctx.requireIdentity();
    const address = addressOf(req);
    if (!bus.access.canServeAddress(who, address)) {
      throw new TidingsError("TIDINGS_ERR_ADDRESS_FORBIDDEN", `Not allowed to serve address ${address}.`, {
        details: { address },
      });
    }
    await connections.of(ctx).register(address);
    return { address };
  });

  bus.handlers.register(FRAME.unregister, (ctx, req) => {
    ctx.requireIdentity();
    const address = addressOf(req);
    connections.find(ctx)?.unregister(address);
    return { address };
  });

  bus.handlers.register(FRAME.started, async (ctx, req) => {
    ctx.requireIdentity();
    const id = commandId(req);
    const c = await bus.commands.start(ctx.db, id, ctx.connectionId);
    return { state: c.state };
  });

  bus.handlers.register(FRAME.result, async (ctx, req) => {
    ctx.requireIdentity();
    const id = commandId(req);
    const outcome = parseOutcome(req.data, bus.options.commands.maxResultBytes);
    const claimer = connections.find(ctx);
    try {
      const c = await bus.commands.complete(ctx.db, id, ctx.connectionId, outcome);
      return { state: c.state };
    } finally {
      // Recorded, answered elsewhere, or no longer this connection's: its place is free.
      claimer?.settled(id);
    }
  });
}
