import type { CommandHost } from "./host.js";
import type { ExpiryScheduler } from "./expiry.js";

/** What the parts of the command service share: the core, the deadline timers, and its open/closed state. */
export interface CommandContext {
  readonly host: CommandHost;
  readonly expiry: ExpiryScheduler;
  /** True once the service closed: operations refuse with shutting-down. */
  readonly closed: boolean;
  /** Checks `db` is served and prepares it once (database-opener.ts); rejects once closed. */
  open(db: string): Promise<void>;
}
