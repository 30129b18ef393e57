import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, type Bus } from "../../src/core/bus.js";
import type { TidingsOptionsInput } from "../../src/options.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { openStoreUrl } from "../../src/stores/open-store.js";
import type { StoredMessage } from "../../src/stores/store.js";

export type Engine = "memory" | "sqlite";
export const ENGINES: readonly Engine[] = ["memory", "sqlite"];

/** A directory removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tidings-${prefix}-${process.pid}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

let files = 0;

/** A bus on a fresh store of `engine` (SQLite in a file of `dir`), database "test", silent. */
export async function busOn(engine: Engine, dir: string, options: TidingsOptionsInput = {}, path?: string): Promise<Bus> {
  files += 1;
  const store = engine === "memory" ? new MemoryStore() : await openStoreUrl(`sqlite:${path ?? join(dir, `bus${files}.db`)}`);
  return createBus({ storeInstance: store, logLevel: "silent", databases: ["test"], secret: "x".repeat(32), ...options });
}

/** Messages the bus publishes on `channel` of `db`, collected as parsed objects. */
export function recordChannel(bus: Bus, db: string, channel: string): Array<Record<string, unknown>> {
  const seen: Array<Record<string, unknown>> = [];
  bus.on("message:published", (d: string, messages: readonly StoredMessage[]) => {
    if (d !== db) return;
    for (const m of messages) if (m.channel === channel) seen.push(JSON.parse(m.json) as Record<string, unknown>);
  });
  return seen;
}

/** Resolves with the first message published on `channel` of `db` for which `match` holds. */
export function nextOn(bus: Bus, db: string, channel: string, match: (m: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (d: string, messages: readonly StoredMessage[]): void => {
      if (d !== db) return;
      for (const m of messages) {
        if (m.channel !== channel) continue;
        const parsed = JSON.parse(m.json) as Record<string, unknown>;
        if (!match(parsed)) continue;
        bus.off("message:published", listener);
        resolve(parsed);
        return;
      }
    };
    bus.on("message:published", listener);
  });
}

/** The same message without its bus-assigned id, for exact comparisons. */
export function withoutId(m: Record<string, unknown>): Record<string, unknown> {
  const { message_id: _id, ...rest } = m;
  return rest;
}
