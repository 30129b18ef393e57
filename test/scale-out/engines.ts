/**
 * The shared engines under test, each isolated for one test file: PostgreSQL in a schema
 * of its own (dropped at the end), Redis under a key prefix of its own (deleted at the end).
 * Every engine connection of the instances carries a name unique to the file, so that
 * fault injection (pg_terminate_backend, CLIENT KILL) hits them and nothing else of a test
 * run sharing the server.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import postgres from "postgres";
import { Redis } from "ioredis";
import { openStoreUrl } from "../../src/stores/open-store.js";
import type { StoredMessage } from "../../src/stores/store.js";
import { DB, Signal } from "./helpers.js";

export interface Engine {
  readonly name: "postgres" | "redis" | "sqlite";
  /** Why the engine's tests are skipped (only when CI is not "true"), else false. */
  readonly skip: string | false;
  /** What `tidings serve --store` gets. */
  readonly storeUrl: string;
  /** Terminates every engine connection of the instances; returns how many. */
  killConnections(): Promise<number>;
  /** The log of `channels` after `after`, read straight from the store: what every subscriber must get. */
  read(channels: readonly string[], after: string | null): Promise<StoredMessage[]>;
  /** Fails if an instance left a connection open; drops the schema or keys. Call after the instances stopped. */
  close(): Promise<void>;
}

const onCi = process.env.CI === "true";

/** Reads a whole channel set through a store opened for the occasion (so no kill hits it). */
async function readThrough(storeUrl: string, channels: readonly string[], after: string | null): Promise<StoredMessage[]> {
  const store = await openStoreUrl(storeUrl);
  await store.open();
  try {
    const out: StoredMessage[] = [];
    for (let cursor = after; ; ) {
      const page = await store.read(DB, { after: cursor, channels, limit: 500 });
      if (page.gap) throw new Error(`the store reports a gap after ${cursor}`);
      if (page.messages.length === 0) return out;
      out.push(...page.messages);
      cursor = page.messages.at(-1)!.id;
    }
  } finally {
    await store.close();
  }
}

/** Resolves once `count()` is 0, or rejects naming what is left after `timeoutMs`. */
async function noneLeft(count: () => Promise<string[]>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await count();
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what} left open: ${left.join(", ")}`);
    // The engine notices a dead client on its own schedule: look again shortly.
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- PostgreSQL ------------------------------------------------------------------------------

export const POSTGRES_URL = process.env.TIDINGS_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

function withParams(base: string, params: Record<string, string>): string {
  const u = new URL(base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

async function postgresReachable(): Promise<boolean> {
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

export interface PostgresEngine extends Engine {
  readonly schema: string;
  /** The application_name every instance connection carries. */
  readonly app: string;
  /** A connection of the test itself (its own application_name), for SQL from "the application". */
  admin(): postgres.Sql;
}

export async function postgresEngine(): Promise<PostgresEngine> {
  const schema = `tidings_so_${process.pid}_${randomBytes(4).toString("hex")}`;
  const app = schema;
  // Under CI a missing database is a failure, never a silent skip.
  const skip = onCi || (await postgresReachable()) ? false : `PostgreSQL not reachable at ${new URL(POSTGRES_URL).host}`;
  // The default pool (10, opened on demand): postgres.js 3.4.9 reads a URL's `max` as a
  // string, which makes a pool of one connection, and a pool of one or two never recovers
  // from pg_terminate_backend while queries are queued (docs/scale-out.md).
  const storeUrl = withParams(POSTGRES_URL, { schema, application_name: app });
  const readerUrl = withParams(POSTGRES_URL, { schema, application_name: `${app}_reader` });
  let admin: postgres.Sql | null = null;
  const sqlAdmin = (): postgres.Sql =>
    (admin ??= postgres(withParams(POSTGRES_URL, { application_name: `${app}_admin` }), { max: 4, onnotice: () => {} }));
  const sessions = async (): Promise<string[]> =>
    (await sqlAdmin()<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE application_name = ${app}`).map((r) => `pid ${r.pid}`);
  return {
    name: "postgres",
    skip,
    storeUrl,
    schema,
    app,
    admin: sqlAdmin,
    async killConnections() {
      const a = sqlAdmin();
      const rows = await a<{ killed: boolean }[]>`
        SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = ${app}`;
      return rows.filter((r) => r.killed).length;
    },
    read: (channels, after) => readThrough(readerUrl, channels, after),
    async close() {
      if (skip) return;
      const a = sqlAdmin();
      try {
        await noneLeft(sessions, "PostgreSQL sessions of the instances");
      } finally {
        await a`DROP SCHEMA IF EXISTS ${a(schema)} CASCADE`;
        await a.end({ timeout: 5 });
      }
    },
  };
}

// ---- Redis -------------------------------------------------------------------------------------

export const REDIS_URL = process.env.TIDINGS_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

async function redisUnreachable(url: string): Promise<string | false> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch {
    return `Redis not reachable at ${new URL(url).host}`;
  } finally {
    probe.disconnect();
  }
}

export interface RedisEngine extends Engine {
  readonly prefix: string;
}

export async function redisEngine(url = REDIS_URL): Promise<RedisEngine> {
  const prefix = `tidings-so:${process.pid}:${randomBytes(4).toString("hex")}:`;
  const down = await redisUnreachable(url);
  const skip = onCi ? false : down;
  const u = new URL(url);
  u.searchParams.set("prefix", prefix);
  const storeUrl = u.toString();
  let admin: Redis | null = null;
  const redisAdmin = (): Redis => {
    if (admin === null) {
      admin = new Redis(url, { maxRetriesPerRequest: 1 });
      admin.on("error", () => {});
    }
    return admin;
  };
  /** The stores name their connections after their key prefix. */
  const clients = async (): Promise<{ id: string; name: string }[]> => {
    const list = (await redisAdmin().call("CLIENT", ["LIST"])) as string;
    return list
      .split("\n")
      .map((line) => Object.fromEntries(line.split(" ").map((kv) => kv.split("=", 2) as [string, string])))
      .filter((c) => typeof c.name === "string" && c.name.startsWith(prefix))
      .map((c) => ({ id: c.id!, name: c.name! }));
  };
  return {
    name: "redis",
    skip,
    storeUrl,
    prefix,
    async killConnections() {
      const victims = await clients();
      for (const c of victims) await redisAdmin().call("CLIENT", ["KILL", "ID", c.id]);
      return victims.length;
    },
    read: (channels, after) => readThrough(storeUrl, channels, after),
    async close() {
      if (skip) return;
      const a = redisAdmin();
      try {
        await noneLeft(async () => (await clients()).map((c) => c.name), "Redis connections of the instances");
      } finally {
        const match = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
        let cursor = "0";
        do {
          const [next, keys] = await a.scan(cursor, "MATCH", match, "COUNT", 500);
          if (keys.length > 0) await a.del(...keys);
          cursor = next;
        } while (cursor !== "0");
        a.disconnect();
      }
    },
  };
}

// ---- a Redis server of the test's own, to restart ----------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const redisServerMissing: string | false =
  spawnSync("redis-server", ["--version"], { stdio: "ignore" }).error === undefined ? false : "redis-server is not installed";

/**
 * A throwaway redis-server on a free port, with an append-only file fsynced on every write
 * in a temporary directory: killed with SIGKILL and started again, it comes back with every
 * acknowledged write, as a production Redis configured for durability does.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), mkdtempSync(join(tmpdir(), "tidings-redis-")));
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private launch(): Promise<void> {
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always",
        "--dir", this.dir, "--logfile", "", "--daemonize", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const ready = new Signal();
    let isReady = false;
    let log = "";
    createInterface({ input: child.stdout! }).on("line", (line) => {
      log += `${line}\n`;
      if (/Ready to accept connections/.test(line)) {
        isReady = true;
        ready.notify();
      }
    });
    let gone = false;
    void this.exited.then(() => {
      gone = true;
      ready.notify();
    });
    return ready.wait(() => isReady || gone, () => `redis-server on ${this.port} to start`, 10_000).then(() => {
      if (!isReady) throw new Error(`redis-server exited before it was ready:\n${log}`);
    });
  }

  /** SIGKILL: a crash, not a shutdown. */
  async kill(): Promise<void> {
    this.child?.kill("SIGKILL");
    await this.exited;
    this.child = null;
  }

  /** Starts it again on the same port and data directory. */
  restart(): Promise<void> {
    return this.launch();
  }

  /** Starts it again on the same port with its data gone, as a Redis without persistence restarts. */
  restartEmpty(): Promise<void> {
    for (const f of readdirSync(this.dir)) rmSync(join(this.dir, f), { recursive: true, force: true });
    return this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
