import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { Redis, type RedisOptions } from "ioredis";
import { TidingsError } from "../../errors.js";
import type { AppendEntry, ClaimPolicy, ReadQuery, ReadResult, RetentionPolicy, Store, StoredMessage } from "../store.js";
import { EngineStore } from "../engine-base.js";
import { newEpoch } from "../message-id.js";
import type { Conn } from "./conn.js";
import { RedisLog } from "./log.js";
import { RedisCommands } from "./commands.js";

export interface RedisStoreOptions {
  /** `redis://[[user]:password@]host[:port][/db]` */
  readonly url: string;
  /**
   * Prepended to every key, so that several buses can share one Redis.
   * @default "tidings:"
   */
  readonly prefix?: string;
}

interface ScriptFile {
  readonly keys: number;
  readonly lua: string;
}

let scriptFiles: Map<string, ScriptFile> | undefined;

/** scripts/<name>-<number of keys>.lua, read once per process. */
function loadScripts(): Map<string, ScriptFile> {
  if (scriptFiles) return scriptFiles;
  const dir = new URL("./scripts/", import.meta.url);
  scriptFiles = new Map();
  for (const file of readdirSync(dir)) {
    const m = /^(.+)-(\d+)\.lua$/.exec(file);
    if (m) scriptFiles.set(m[1]!, { keys: Number(m[2]), lua: readFileSync(new URL(file, dir), "utf8") });
  }
  return scriptFiles;
}

/** How long one XREAD blocks before the loop issues it again (with the current list of streams). */
const BLOCK_MS = 5000;
/** How long closing waits for the wake-up loop to end. */
const CLOSE_WAIT_MS = 1000;

/**
 * Redis engine: a stream per database holds the log, Lua scripts make every write atomic,
 * and a second connection blocks in XREAD on all known streams to wake the core.
 * Shared by any number of server instances on the same prefix.
 */
export class RedisStore extends EngineStore implements Store {
  readonly engine = "redis";
  readonly capabilities = { transactional: false, shared: true } as const;

  private readonly prefix: string;
  /** Runs every command and script. */
  private readonly main: Redis;
  /** Only blocks in XREAD: a blocked connection cannot serve anything else. */
  private readonly watcher: Redis;
  private readonly log: RedisLog;
  private readonly commands: RedisCommands;
  private readonly conn: Conn;
  /** Commands written to `main` and not yet answered; see `track`. */
  private readonly inFlight = new Set<(err: Error) => void>();
  /** Database -> newest stream id the watcher has seen. */
  private readonly watched = new Map<string, string>();
  /** Newest id seen in the `dbs` stream (one entry per database, written when its log is created). */
  private dbsSeen = "0-0";
  private epochValue: Promise<string> = Promise.reject(new TidingsError("TIDINGS_ERR_INTERNAL", "RedisStore used before open()"));
  private watching: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: RedisStoreOptions) {
    super();
    checkDatabaseNumber(options.url);
    this.prefix = options.prefix ?? "tidings:";
    this.epochValue.catch(() => {});
    // Connection names let operators (and the tests) find them in CLIENT LIST.
    const name = `${this.prefix.replace(/[^!-~]/g, "_")}${randomBytes(4).toString("hex")}`;
    const common: RedisOptions = { lazyConnect: true, connectTimeout: 5000 };
    // Never resend a command in flight when the connection dropped: an append whose reply
    // was lost would be appended twice. It fails instead (see `track`).
    this.main = new Redis(options.url, { ...common, connectionName: `${name}:main`, autoResendUnfulfilledCommands: false });
    // The watcher's XREAD waits out any outage instead of failing after 20 retries.
    this.watcher = new Redis(options.url, { ...common, connectionName: `${name}:watch`, maxRetriesPerRequest: null });
    // Failures reach the caller of the command that failed; reconnecting is automatic.
    this.main.on("error", () => {});
    this.watcher.on("error", () => {});
    this.main.on("close", () => this.abortInFlight());

    const scripts = loadScripts();
    for (const [script, file] of scripts) {
      this.main.defineCommand(scriptCommand(script), { numberOfKeys: file.keys, lua: file.lua });
    }
    this.conn = {
      key: (db, k) => (db === null ? `${this.prefix}${k}` : `${this.prefix}{${db}}:${k}`),
      script: (script, keys, args) => {
        const file = scripts.get(script);
        if (!file || file.keys !== keys.length) {
          throw new TidingsError("TIDINGS_ERR_INTERNAL", `No Redis script ${script} taking ${keys.length} keys.`);
        }
        const run = Reflect.get(this.main, scriptCommand(script)) as (...a: (string | number)[]) => Promise<unknown>;
        return this.track(() => run.call(this.main, ...keys, ...args));
      },
      command: (cmd, args) => this.track(() => this.main.call(cmd, args)),
      epoch: () => this.epochValue,
    };
    this.log = new RedisLog(this.conn);
    this.commands = new RedisCommands(this.conn);
  }

  async open(): Promise<void> {
    await Promise.all([this.main.connect(), this.watcher.connect()]);
    this.epochValue = this.loadEpoch();
    await this.epochValue;
    // After a reconnect, re-read the epoch before any queued command is answered: ioredis
    // emits "ready" before it flushes its offline queue, and operations await the epoch.
    this.main.on("ready", () => {
      const previous = this.epochValue;
      this.epochValue = this.loadEpoch().catch(() => previous);
    });
    // Wake-ups may have been missed while the watcher was away: let the core re-read all.
    this.watcher.on("ready", () => this.fire(this.watched.keys()));
    await this.catchUp(await this.newDatabases());
    this.watching = this.watch();
  }

  protected async doClose(): Promise<void> {
    this.closing ??= (async () => {
      this.watcher.disconnect(); // its pending XREAD fails and the loop ends
      // Unless the loop awaits a command of the main connection that ioredis never settles
      // (one sent while it was reconnecting, then lost with the connection: redis/ioredis#2193;
      // seen after a Redis crash and restart): closing must not wait for it.
      await Promise.race([this.watching, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
      if (this.main.status === "ready") await this.main.quit().catch(() => this.main.disconnect());
      else this.main.disconnect();
    })();
    return this.closing;
  }

  private async loadEpoch(): Promise<string> {
    return (await this.conn.script("epoch", [this.conn.key(null, "epoch")], [newEpoch()])) as string;
  }

  /**
   * ioredis 5.9 never settles a command that was in flight when the connection dropped if
   * autoResendUnfulfilledCommands is off (redis/ioredis#2193). Such calls are rejected here
   * on "close"; whether Redis ran them is unknown. Calls made while disconnected wait in
   * ioredis's offline queue and are settled by it.
   */
  private track<T>(op: () => Promise<T>): Promise<T> {
    if (this.main.status !== "ready") return op();
    return new Promise<T>((resolve, reject) => {
      this.inFlight.add(reject);
      op()
        .then(resolve, reject)
        .finally(() => this.inFlight.delete(reject));
    });
  }

  private abortInFlight(): void {
    // 500, not 503: the write may have been applied, so it must not be retried blindly.
    const err = new TidingsError("TIDINGS_ERR_INTERNAL", "The Redis connection was lost while a command was in flight; its outcome is unknown.");
    for (const reject of this.inFlight) reject(err);
    this.inFlight.clear();
  }

  // ---- wake-up ----------------------------------------------------------------------------

  /**
   * XREAD BLOCK on the `dbs` stream and every database's log. A hint only: on a wake-up the
   * newest id of each woken stream is read *before* listeners fire, so whatever is appended
   * after that id is caught by the next XREAD and whatever before by the core's own read.
   */
  private async watch(): Promise<void> {
    const dbsKey = this.conn.key(null, "dbs");
    let failures = 0;
    while (this.closing === null) {
      try {
        const dbs = [...this.watched.keys()];
        const keys = [dbsKey, ...dbs.map((db) => this.conn.key(db, "log"))];
        const ids = [this.dbsSeen, ...dbs.map((db) => this.watched.get(db)!)];
        const reply = (await this.watcher.call("XREAD", ["COUNT", 1, "BLOCK", BLOCK_MS, "STREAMS", ...keys, ...ids])) as
          | [string, unknown][]
          | null;
        failures = 0;
        if (reply === null) continue;
        const woken = new Set<string>();
        for (const [key] of reply) {
          if (key === dbsKey) for (const db of await this.newDatabases()) woken.add(db);
          else woken.add(dbs[keys.indexOf(key) - 1]!);
        }
        await this.catchUp(woken);
      } catch {
        if (this.closing !== null) return;
        // A reply error (not a dropped connection, which waits in the offline queue): back off.
        failures += 1;
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** failures)).unref());
      }
    }
  }

  /** Reads new entries of the `dbs` stream; returns databases not watched before. */
  private async newDatabases(): Promise<string[]> {
    const entries = (await this.watcher.call("XRANGE", [this.conn.key(null, "dbs"), `(${this.dbsSeen}`, "+"])) as [
      string,
      string[],
    ][];
    const added: string[] = [];
    for (const [id, [, db]] of entries) {
      this.dbsSeen = id;
      if (db !== undefined && !this.watched.has(db)) {
        this.watched.set(db, "0-0");
        added.push(db);
      }
    }
    return added;
  }

  /** Moves the watched ids of `dbs` to their streams' newest entries, then fires listeners. */
  private async catchUp(dbs: Iterable<string>): Promise<void> {
    const list = [...dbs];
    if (list.length === 0) return;
    const pipeline = this.watcher.pipeline();
    for (const db of list) pipeline.call("XREVRANGE", this.conn.key(db, "log"), "+", "-", "COUNT", 1);
    const replies = (await pipeline.exec()) ?? [];
    list.forEach((db, i) => {
      const [err, top] = replies[i] ?? [null, []];
      const newest = !err && (top as [string][])[0]?.[0];
      if (newest) this.watched.set(db, newest);
    });
    this.fire(list);
  }

  private fire(dbs: Iterable<string>): void {
    for (const db of dbs) this.wakeups.fire(db);
  }

  // ---- the log ------------------------------------------------------------------------------

  protected doAppend(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    return this.log.append(db, entries);
  }
  /** The watcher's XREAD sees this instance's appends like any other's. */
  protected override appended(): void {}
  protected doRead(db: string, query: ReadQuery): Promise<ReadResult> {
    return this.log.read(db, query);
  }
  protected doHead(db: string): Promise<string | null> {
    return this.log.head(db);
  }
  protected doTrim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.log.trim(db, policy, now);
  }
  protected commandTable(): RedisCommands {
    return this.commands;
  }

  // ---- ownership ----------------------------------------------------------------------------

  // Per database: `owners` (key -> owner), `owner-expiry` (keys by expiry) and one
  // `owned:<owner>` set per owner (its keys by expiry), all in the database's hash slot.

  async claimOwner(db: string, key: string, owner: string, { now, ttlMs, maxPerOwner }: ClaimPolicy): Promise<string> {
    const owned = this.conn.key(db, "owned:");
    const keys = [this.conn.key(db, "owners"), this.conn.key(db, "owner-expiry"), `${owned}${owner}`];
    return (await this.conn.script("claim-owner", keys, [key, owner, now, ttlMs, maxPerOwner, owned])) as string;
  }
  async trimOwners(db: string, now: number): Promise<number> {
    const keys = [this.conn.key(db, "owners"), this.conn.key(db, "owner-expiry")];
    return (await this.conn.script("trim-owners", keys, [now, this.conn.key(db, "owned:")])) as number;
  }
}

/**
 * The URL's path names a Redis database by number (`/0`); ioredis would send anything else
 * as `SELECT NaN` and fail outside any caller, so a bad one is refused here with a sentence.
 */
function checkDatabaseNumber(url: string): void {
  const path = new URL(url).pathname;
  if (!/^\/?\d*$/.test(path)) {
    throw new TidingsError("TIDINGS_ERR_CONFIG", `Invalid Redis URL: the path ${JSON.stringify(path)} must be a database number such as /0.`);
  }
}

/** `command-claim` -> `tidings_command_claim`: prefixed so that no script hides a Redis command. */
function scriptCommand(name: string): string {
  return `tidings_${name.replace(/-/g, "_")}`;
}
