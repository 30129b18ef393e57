import type { StoredMessage } from "../stores/store.js";
import type { DbLog } from "./db-log.js";
import type { Delivery, Listener } from "./listener.js";

export interface PollRequest {
  readonly channels: readonly string[];
  readonly after: string | null;
  /** Most messages in one answer (Tryton clients: 1). */
  readonly limit: number;
  readonly timeoutMs: number;
  /** Aborts the wait (client went away, server draining): resolves with what is there, usually nothing. */
  readonly signal?: AbortSignal;
  /**
   * A lighter alternative to `signal` for hot paths: called when the poll parks with a
   * function that ends the wait early (client gone, server draining).
   */
  readonly bindCancel?: (cancel: () => void) => void;
  /** Called when the poll parks and when it unparks, for gauges and per-user caps. */
  readonly onPark?: (parked: boolean) => void;
}

/**
 * One long-poll: answers at once with what is after the cursor, else parks until a message
 * arrives on one of its channels, the timeout passes or the signal aborts.
 */
export async function poll(log: DbLog, req: PollRequest): Promise<Delivery> {
  const channels = new Set(req.channels);
  const collected: StoredMessage[] = [];
  let settle: (() => void) | null = null;
  let woken = false;
  let missed = false;
  const waiter: Listener = {
    channels,
    cursor: req.after,
    push(m) {
      if (collected.length < req.limit) collected.push(m);
    },
    flush() {
      woken = true;
      log.removeListener(waiter);
      settle?.();
    },
    // Told with the messages that follow (or the empty answer): the client resumes from them.
    gap() {
      missed = true;
    },
  };
  // fetch registers the waiter itself, in the same tick as the scan that found nothing.
  const first =
    log.fetchNow(channels, req.after, req.limit, waiter) ?? (await log.fetch(channels, req.after, req.limit, waiter));
  if (first.messages.length > 0) return first;
  if (woken) return { messages: collected, gap: first.gap || missed };
  if (req.timeoutMs <= 0 || req.signal?.aborted) {
    log.removeListener(waiter);
    return { messages: collected, gap: first.gap || missed };
  }
  req.onPark?.(true);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, req.timeoutMs);
    function done(): void {
      clearTimeout(timer);
      req.signal?.removeEventListener("abort", done);
      log.removeListener(waiter);
      settle = null;
      resolve();
    }
    settle = done;
    req.signal?.addEventListener("abort", done, { once: true });
    req.bindCancel?.(done);
  });
  req.onPark?.(false);
  return { messages: collected, gap: first.gap || missed };
}
