import type { Logger } from "pino";
import type { Stream, StreamHandlers } from "../core/stream.js";
import type { TidingsOptions } from "../options.js";
import type { Store } from "../stores/store.js";

export interface HintItem {
  readonly channel: string;
  readonly message: unknown;
}

/**
 * What commands need of the core, and nothing more: the bus satisfies it, and commands
 * never import the bus (the core does not depend on commands, nor commands on the core's
 * wiring).
 */
export interface CommandHost {
  readonly options: TidingsOptions;
  readonly store: Store;
  readonly logger: Logger;
  /** Throws when `db` is not served; the log's head once loaded. */
  log(db: string): { readonly ready: Promise<unknown>; readonly head: string | null };
  publishMany(db: string, items: readonly HintItem[]): Promise<string[]>;
  stream(db: string, channels: Iterable<string>, after: string | null, handlers: StreamHandlers): Stream;
}
