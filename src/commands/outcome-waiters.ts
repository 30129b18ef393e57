import type { CommandContext } from "./context.js";
import { TidingsError } from "../errors.js";
import { FINAL_COMMAND_STATES, type CommandRecord } from "../stores/store.js";
import { outcomeChannel } from "../protocol/commands.js";
import { notFound } from "./command-errors.js";

export interface WaitOptions {
  /** Give up after this long and resolve with the command as it stands. @default no limit */
  readonly timeoutMs?: number;
  /** Stops waiting (resolving with the command as it stands). */
  readonly signal?: AbortSignal;
}

/** A waiter re-reads the store this often even without a hint (a lost hint cannot strand it). */
const RECHECK_MS = 5000;

/**
 * Senders waiting for outcomes: each listens on `command-outcome:<id>` and re-reads the
 * store when woken (the hint only says to look). `stopAll()` ends every wait at close.
 */
export class OutcomeWaiters {
  private readonly stoppers = new Set<() => void>();

  constructor(private readonly ctx: CommandContext) {}

  /**
   * Resolves with the command once it is final, or as it stands when `timeoutMs` passes or
   * the signal aborts. Rejects when it does not exist, or when the service closes.
   */
  async wait(db: string, id: string, options: WaitOptions = {}): Promise<CommandRecord> {
    const { host, expiry } = this.ctx;
    await this.ctx.open(db);
    const log = host.log(db);
    await log.ready;
    let hinted = false;
    let wake: (() => void) | null = null;
    // Listen from the head before reading the store, so an outcome in between is not missed.
    const stream = host.stream(db, [outcomeChannel(id)], log.head, {
      onMessages: (messages) => {
        if (messages.length === 0) return;
        hinted = true;
        wake?.();
      },
    });
    const until = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    try {
      for (;;) {
        hinted = false;
        const c = await host.store.getCommand(db, id);
        if (c === null) throw notFound(id);
        if (FINAL_COMMAND_STATES.has(c.state)) return c;
        if (c.deadline !== null) expiry.schedule(db, c.deadline);
        if (this.ctx.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
        const left = until - Date.now();
        if (left <= 0 || options.signal?.aborted) return c;
        if (hinted) continue;
        const reason = await new Promise<"hint" | "timer" | "stop">((resolve) => {
          const timer = setTimeout(() => done("timer"), Math.min(left, RECHECK_MS));
          timer.unref?.();
          const stop = (): void => done("stop");
          options.signal?.addEventListener("abort", stop, { once: true });
          this.stoppers.add(stop);
          wake = () => done("hint");
          const stoppers = this.stoppers;
          function done(why: "hint" | "timer" | "stop"): void {
            clearTimeout(timer);
            options.signal?.removeEventListener("abort", stop);
            stoppers.delete(stop);
            wake = null;
            resolve(why);
          }
        });
        if (reason === "stop") {
          if (this.ctx.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
          return (await host.store.getCommand(db, id)) ?? c;
        }
      }
    } finally {
      stream.close();
    }
  }

  /** Wakes every waiter; with the service closed, they reject with shutting-down. */
  stopAll(): void {
    for (const stop of [...this.stoppers]) stop();
  }
}
