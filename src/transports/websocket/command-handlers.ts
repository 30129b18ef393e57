import type { AccessControl } from "../../core/access.js";
import type { HandlerContext, HandlerRegistry, HandlerRequest } from "../../core/handlers.js";
import { TidingsError } from "../../errors.js";
import type { TidingsOptions } from "../../options.js";
import { FRAME } from "../../protocol/commands.js";
import type { CommandDispatcher } from "../../commands/dispatcher.js";
import type { CommandService } from "../../commands/service.js";
import { parseOutcome } from "../../commands/validation.js";
import { ADDRESS_DATA } from "../../protocol/command-bodies.js";
import { parseWire } from "../../protocol/validate.js";

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
  // One dispatcher per connection, created by its first registration.
  const dispatchers = new Map<string, CommandDispatcher>();

  function dispatcherOf(ctx: HandlerContext): CommandDispatcher {
    const key = `${ctx.db}\u0000${ctx.connectionId}`;
    let d = dispatchers.get(key);
    if (d === undefined) {
      const created = bus.commands.dispatcher(ctx.db, ctx.connectionId, (frame) => ctx.send(frame));
      dispatchers.set(key, created);
      ctx.onClose(() => {
        dispatchers.delete(key);
        void created.close();
      });
      d = created;
    }
    return d;
  }

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
    await dispatcherOf(ctx).register(address);
    return { address };
  });

  bus.handlers.register(FRAME.unregister, (ctx, req) => {
    ctx.requireIdentity();
    const address = addressOf(req);
    const key = `${ctx.db}\u0000${ctx.connectionId}`;
    dispatchers.get(key)?.unregister(address);
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
    const d = dispatchers.get(`${ctx.db}\u0000${ctx.connectionId}`);
    try {
      const c = await bus.commands.complete(ctx.db, id, ctx.connectionId, outcome);
      return { state: c.state };
    } finally {
      // Recorded, answered elsewhere, or no longer this connection's: its place is free.
      d?.settled(id);
    }
  });
}
