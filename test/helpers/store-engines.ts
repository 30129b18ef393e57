/**
 * The four store engines as URLs, each isolated for one test file: SQLite in a temporary
 * directory, PostgreSQL in a schema of its own, Redis under a key prefix of its own.
 * `cleanup()` removes all three. Unreachable servers skip their engine (never under CI).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";

export const POSTGRES_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TIDINGS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export interface StoreEngine {
  readonly name: "memory" | "sqlite" | "postgres" | "redis";
  readonly url: string;
  readonly skip: string | false;
}

/** Whether the test PostgreSQL server answers (suites skip without it, never under CI). */
export async function postgresReachable(): Promise<boolean> {
  const probe = postgres(POSTGRES_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end({ timeout: 1 });
  }
}

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function storeEngines(label: string): Promise<{ engines: StoreEngine[]; pgSchema: string; cleanup: () => Promise<void> }> {
  const tag = `${process.pid}_${randomBytes(4).toString("hex")}`;
  const pgSchema = `tidings_${label}_${tag}`;
  const redisPrefix = `tidings-${label}:${tag}:`;
  const dir = mkdtempSync(join(tmpdir(), `tidings-${label}-`));
  const onCi = process.env.CI === "true";
  const pgSkip = onCi || (await postgresReachable()) ? false : "PostgreSQL not reachable";
  const redisSkip = onCi || (await redisReachable()) ? false : "Redis not reachable";
  const engines: StoreEngine[] = [
    { name: "memory", url: "memory:", skip: false },
    { name: "sqlite", url: `sqlite:${join(dir, "t.db")}`, skip: false },
    { name: "postgres", url: `${POSTGRES_URL}?schema=${pgSchema}`, skip: pgSkip },
    { name: "redis", url: `${REDIS_URL}?prefix=${encodeURIComponent(redisPrefix)}`, skip: redisSkip },
  ];
  async function cleanup(): Promise<void> {
    rmSync(dir, { recursive: true, force: true });
    if (!pgSkip) {
      const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
      await sql`DROP SCHEMA IF EXISTS ${sql(pgSchema)} CASCADE`;
      await sql.end({ timeout: 5 });
    }
    if (!redisSkip) {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${redisPrefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    }
  }
  return { engines, pgSchema, cleanup };
}
