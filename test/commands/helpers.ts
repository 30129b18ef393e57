import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";
import { createBus, type TidingsBus as Bus } from "../../src/bus.js";
import type { TidingsOptionsInput } from "../../src/options.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { openStoreUrl } from "../../src/stores/open-store.js";
import type { StoredMessage } from "../../src/stores/store.js";

export type Engine = "memory" | "sqlite" | "postgres" | "redis";
export const ENGINES: readonly Engine[] = ["memory", "sqlite"];

const POSTGRES_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.TIDINGS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
/** This file's own namespace in the shared engines, removed by `cleanShared()`. */
const NAMESPACE = `tidings_cmd_${process.pid}_${randomBytes(3).toString("hex")}`;

/**
 * The shared engines reachable here (both are started by the developer or CI). Under CI a
 * missing engine is a failure, not a skip.
 */
export async function sharedEngines(): Promise<Engine[]> {
  const out: Engine[] = [];
  const pg = postgres(POSTGRES_URL, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await pg`SELECT 1`;
    out.push("postgres");
  } catch {
    if (process.env.CI === "true") throw new Error(`PostgreSQL not reachable at ${POSTGRES_URL}`);
  } finally {
    await pg.end({ timeout: 1 });
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
    out.push("redis");
  } catch {
    if (process.env.CI === "true") throw new Error(`Redis not reachable at ${REDIS_URL}`);
  } finally {
    redis.disconnect();
  }
  return out;
}

/** Drops this file's schema and keys in the shared engines. */
export async function cleanShared(engines: readonly Engine[]): Promise<void> {
  if (engines.includes("postgres")) {
    const pg = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    try {
      await pg.unsafe(`DROP SCHEMA IF EXISTS ${NAMESPACE} CASCADE`);
    } finally {
      await pg.end({ timeout: 1 });
    }
  }
  if (engines.includes("redis")) {
    const redis = new Redis(REDIS_URL);
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${NAMESPACE}:*`, "COUNT", 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
  }
}

function storeUrl(engine: Engine, dir: string, path: string | undefined): string {
  switch (engine) {
    case "memory":
      return "memory:";
    case "sqlite":
      return `sqlite:${path ?? join(dir, `bus${files}.db`)}`;
    case "postgres": {
      const u = new URL(POSTGRES_URL);
      u.searchParams.set("schema", NAMESPACE);
      return u.toString();
    }
    case "redis": {
      const u = new URL(REDIS_URL);
      u.searchParams.set("prefix", `${NAMESPACE}:`);
      return u.toString();
    }
  }
}

/** A directory removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tidings-${prefix}-${process.pid}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

let files = 0;

/** A bus on a fresh store of `engine` (SQLite in a file of `dir`), database "test", silent. */
export async function busOn(engine: Engine, dir: string, options: TidingsOptionsInput = {}, path?: string): Promise<Bus> {
  files += 1;
  const store = engine === "memory" ? new MemoryStore() : await openStoreUrl(storeUrl(engine, dir, path));
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
