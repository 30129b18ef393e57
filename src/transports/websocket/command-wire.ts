import type { HandlerContext } from "../../core/handlers.js";
import type { CommandClaimer } from "../../commands/claimer.js";
import type { CommandService } from "../../commands/service.js";
import { commandDelivery, FRAME } from "../../protocol/commands.js";

/**
 * The WebSocket side of a connection's commands: one claimer per connection, created by
 * its first `command-register` and closed with the connection, whose deliveries go out as
 * `command` frames and whose stops as `command-cancel` frames (docs/protocol/commands.md).
 */
export class CommandConnections {
  private readonly claimers = new Map<string, CommandClaimer>();

  constructor(private readonly commands: CommandService) {}

  /** The connection's claimer, created on first use. */
  of(ctx: HandlerContext): CommandClaimer {
    const key = keyOf(ctx);
    let claimer = this.claimers.get(key);
    if (claimer === undefined) {
      const created = this.commands.claimer(ctx.db, ctx.connectionId, {
        deliver: (c) => ctx.send({ type: FRAME.command, id: c.id, data: commandDelivery(c) }),
        stop: (id, state) => ctx.send({ type: FRAME.cancel, id, data: { state } }),
      });
      this.claimers.set(key, created);
      ctx.onClose(() => {
        this.claimers.delete(key);
        void created.close();
      });
      claimer = created;
    }
    return claimer;
  }

  /** The connection's claimer if it registered an address, or undefined. */
  find(ctx: HandlerContext): CommandClaimer | undefined {
    return this.claimers.get(keyOf(ctx));
  }
}

function keyOf(ctx: HandlerContext): string {
  return `${ctx.db}\u0000${ctx.connectionId}`;
}
