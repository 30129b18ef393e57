import type { Logger } from "pino";
import { Bus } from "./core/bus.js";
import { resolveOptions, type TidingsOptionsInput } from "./options.js";
import { Metrics } from "./metrics.js";
import { createLogger } from "./logger.js";
import type { Store } from "./stores/store.js";
import { openStoreUrl } from "./stores/open-store.js";
import { openStoreOrExplain } from "./stores/store-errors.js";
import { CommandService, type SendOptions } from "./commands/service.js";
import { createProxy, type CommandProxy } from "./commands/proxy.js";

export interface BusInput extends TidingsOptionsInput {
  /** A store instance (opened by the bus) or a store URL; defaults to `options.store`. */
  readonly storeInstance?: Store;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

/**
 * The bus an application embeds (`createBus`) and a server runs on: the core plus what is
 * built on it — server-to-client commands. The core itself knows nothing of these.
 */
export class TidingsBus extends Bus {
  /** Server-to-client commands (DESIGN §6): send, get, list, cancel, wait. */
  readonly commands = new CommandService(this);

  /** Resolves the options, opens the store and builds the bus on it. */
  static async create(input: BusInput = {}): Promise<TidingsBus> {
    const options = resolveOptions(input);
    const logger = input.logger ?? createLogger(options.logLevel);
    const store = input.storeInstance ?? (await openStoreUrl(options.store));
    await openStoreOrExplain(store, input.storeInstance ? undefined : options.store);
    return new TidingsBus({ options, store, logger, metrics: input.metrics ?? new Metrics() });
  }

  /** `bus.proxy(db, address).someMethod(...args)` sends a command and resolves with its result. */
  proxy(db: string, address: string, options?: SendOptions): CommandProxy {
    return createProxy(this.commands, db, address, options);
  }

  /** Stops commands first (releasing the claims of connected clients, stopping waiters), then the core. */
  override async close(): Promise<void> {
    await this.commands.close();
    await super.close();
  }
}

export function createBus(input: BusInput = {}): Promise<TidingsBus> {
  return TidingsBus.create(input);
}
