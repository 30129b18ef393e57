import { TidingsBus as Bus } from "../../src/bus.js";
import type { PartialDatabaseOptions } from "../../src/options.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { CountingStore } from "./counting-store.js";

export const DB = "t";

export interface BusUnderTest {
  readonly bus: Bus;
  readonly store: CountingStore;
}

/** A bus on a counting memory store (fresh unless given, e.g. to simulate a restart). */
export async function makeBus(
  opts: {
    shared?: boolean;
    tailSize?: number;
    retention?: PartialDatabaseOptions["retention"];
    /** Reuse a store (a restart), or another counter on the same log (a second instance). */
    store?: CountingStore;
  } = {},
): Promise<BusUnderTest> {
  const store = opts.store ?? new CountingStore({ shared: opts.shared ?? false });
  const bus = await Bus.create({
    storeInstance: store,
    logLevel: "silent",
    databases: { [DB]: opts.retention ? { retention: opts.retention } : {} },
    ...(opts.tailSize !== undefined ? { tailSize: opts.tailSize } : {}),
  });
  return { bus, store };
}

/** Publishes `n` messages `{type: "t", n: start..}` on `channel`, one by one; returns their ids. */
export async function publishN(bus: Bus, channel: string, n: number, start = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await bus.publish(DB, channel, { type: "t", n: start + i }));
  return ids;
}

export function ids(messages: readonly StoredMessage[]): string[] {
  return messages.map((m) => m.id);
}

/**
 * Resolves once `predicate` holds. For state that has no event of its own (a poll has
 * parked); checks between turns of the event loop, fails after `ms`.
 */
export async function waitFor(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms; // not Date: some tests mock it
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
