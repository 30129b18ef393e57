/**
 * "Wait for a wake-up, then claim" — the cycle every command wire runs for an address:
 * the server's per-connection claimer (WebSocket), the HTTP claim route, and the SDK's
 * long-poll client.
 * It claims what there is room for; a claim that filled its room may have left more, so it
 * claims again at once; otherwise everything pending was taken, and anything newer sends a
 * wake-up on `command:<address>`, which the loop waits for. Leases, renewal and release
 * stay with the caller, which knows its clock and its wire. No Node imports: the SDK uses it.
 */

export interface ClaimSteps<C> {
  /** Whether to go on; checked before every pass. */
  live(): boolean;
  /** How many commands may be claimed now (0: wait for a wake-up, e.g. a freed place). */
  room(): number | Promise<number>;
  claim(limit: number): Promise<readonly C[]>;
  /** Hands the claimed commands on: pushes them, runs them, or collects them. */
  deliver(commands: readonly C[]): void;
  /** Resolves once more may be claimable (a wake-up message, a freed place, a timer); false ends the loop. */
  wake(): Promise<boolean>;
}

/** Runs the cycle until `live()` or `wake()` says to stop; a failing step rejects it (the caller retries). */
export async function claimLoop<C>(steps: ClaimSteps<C>): Promise<void> {
  while (steps.live()) {
    const room = await steps.room();
    if (room > 0) {
      const got = await steps.claim(room);
      steps.deliver(got);
      if (got.length >= room) continue;
    }
    if (!(await steps.wake())) return;
  }
}

/**
 * A wake-up that is not lost: `notify()` before anyone waits is kept for the next `wait()`,
 * and several notifications while a claim runs make one more pass, not several.
 */
export class WakeSignal {
  private pending = false;
  private waiter: ((woken: boolean) => void) | null = null;
  private closed = false;

  notify(): void {
    const waiter = this.waiter;
    if (waiter === null) {
      this.pending = true;
      return;
    }
    this.waiter = null;
    waiter(true);
  }

  /** True once notified; false once closed. */
  wait(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => (this.waiter = resolve));
  }

  close(): void {
    this.closed = true;
    this.waiter?.(false);
    this.waiter = null;
  }
}
