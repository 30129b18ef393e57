import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import type {
  ClaimPolicy,
  AppendEntry,
  AppendResult,
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  FinishResult,
  NewCommand,
  ReadQuery,
  ReadResult,
  RetentionPolicy,
  Store,
} from "../store.js";
import { newEpoch } from "../message-id.js";
import { TidingsError } from "../../errors.js";
import { SqliteLog } from "./log.js";
import { SqliteCommands } from "./commands.js";
import { CommitWatcher, DEFAULT_WATCH_INTERVAL_MS } from "./commit-watcher.js";
import { Instances } from "./instances.js";
import { SqliteOwners } from "./owners.js";

export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. ":memory:" keeps everything in memory. */
  readonly path: string;
  /**
   * How often to look for other processes' commits to the file (milliseconds).
   * @default 25
   */
  readonly watchIntervalMs?: number;
}

interface Opened {
  readonly sql: Database.Database;
  readonly log: SqliteLog;
  readonly commands: SqliteCommands;
  readonly owners: SqliteOwners;
  readonly watcher: CommitWatcher | null;
  readonly instances: Instances | null;
}

const SQL_DIR = new URL("./sql/", import.meta.url);

/**
 * The embedded default: durable, zero setup. Other processes of this host may use the same
 * file (a second server, an application's `createBus`): their appends are noticed within
 * about `watchIntervalMs` and reported through `onAppend`.
 */
export class SqliteStore implements Store {
  readonly engine = "sqlite";
  readonly capabilities;
  private opened: Opened | null = null;
  private readonly listeners = new Set<(db: string) => void>();

  constructor(private readonly options: SqliteStoreOptions) {
    this.capabilities = { transactional: false, shared: false, otherProcesses: !inMemory(options.path) } as const;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    const { path } = this.options;
    if (path !== ":memory:" && path !== "" && !path.startsWith("file:")) {
      mkdirSync(dirname(resolve(path)), { recursive: true });
    }
    const sql = new Database(path);
    try {
      sql.pragma("journal_mode = WAL");
      sql.pragma("synchronous = NORMAL");
      sql.pragma("busy_timeout = 5000");
      migrate(sql);
      // Created with the file and kept for its lifetime: a recreated file gets a new epoch.
      sql.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)").run(newEpoch());
      const epoch = sql.prepare<[], string>("SELECT value FROM meta WHERE key = 'epoch'").pluck().get()!;
      const report = (db: string): void => {
        for (const l of this.listeners) l(db);
      };
      this.opened = {
        sql,
        log: new SqliteLog(sql, epoch),
        commands: new SqliteCommands(sql),
        owners: new SqliteOwners(sql),
        watcher: this.capabilities.otherProcesses
          ? new CommitWatcher(sql, this.options.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS, report)
          : null,
        instances: this.capabilities.otherProcesses ? new Instances(sql) : null,
      };
    } catch (err) {
      sql.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const opened = this.opened;
    this.opened = null;
    opened?.watcher?.close();
    opened?.instances?.close();
    opened?.sql.close();
  }

  private get o(): Opened {
    if (!this.opened) throw new TidingsError("TIDINGS_ERR_INTERNAL", "SqliteStore is not open: call open() first");
    return this.opened;
  }

  async append(db: string, entries: readonly AppendEntry[]): Promise<AppendResult> {
    const o = this.o;
    const out = whenFull(() => o.log.append(db, entries, Date.now()));
    if (o.watcher !== null) {
      // Reported with the other processes' appends, once per tick: the core takes its own
      // appends from this result and needs no read per append.
      o.watcher.appended(db);
    } else {
      for (const l of this.listeners) l(db);
    }
    return out;
  }
  async read(db: string, query: ReadQuery): Promise<ReadResult> {
    return this.o.log.read(db, query);
  }
  async head(db: string): Promise<string | null> {
    return this.o.log.head(db);
  }
  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return whenFull(() => this.o.log.trim(db, policy, now));
  }
  onAppend(listener: (db: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async anotherProcessAlive(): Promise<boolean> {
    return whenFull(() => this.o.instances?.anotherAlive() ?? false);
  }

  async claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    return whenFull(() => this.o.owners.claim(db, key, owner, policy));
  }
  async trimOwners(db: string, now: number): Promise<number> {
    return whenFull(() => this.o.owners.trim(db, now));
  }

  async createCommand(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    return whenFull(() => this.o.commands.create(db, c));
  }
  async getCommand(db: string, id: string): Promise<CommandRecord | null> {
    return this.o.commands.get(db, id);
  }
  async findCommandByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    return this.o.commands.findByKey(db, address, idempotencyKey);
  }
  async listCommands(db: string, filter: CommandFilter): Promise<CommandRecord[]> {
    return this.o.commands.list(db, filter);
  }
  async countOpenCommands(db: string, address: string): Promise<number> {
    return this.o.commands.countOpen(db, address);
  }
  async claimCommands(
    db: string,
    address: string,
    claimer: string,
    limit: number,
    now: number,
    leaseMs: number,
  ): Promise<CommandRecord[]> {
    return whenFull(() => this.o.commands.claim(db, address, claimer, limit, now, leaseMs));
  }
  async startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    return whenFull(() => this.o.commands.start(db, id, claimer, now));
  }
  async renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    return whenFull(() => this.o.commands.renew(db, claimer, now, leaseMs));
  }
  async releaseClaims(db: string, claimer: string): Promise<number> {
    return whenFull(() => this.o.commands.release(db, claimer));
  }
  async finishCommand(
    db: string,
    id: string,
    outcome: CommandOutcome,
    claimer: string | null,
    now: number,
  ): Promise<FinishResult> {
    return whenFull(() => this.o.commands.finish(db, id, outcome, claimer, now));
  }
  async expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    return whenFull(() => this.o.commands.expire(db, now));
  }
}

/**
 * A full disk (or quota) is the operator's to fix, not a bug: the write was rolled back
 * whole, so the caller gets an error that says so, and the next write may succeed.
 */
function whenFull<T>(write: () => T): T {
  try {
    return write();
  } catch (e) {
    if (e instanceof Database.SqliteError && e.code === "SQLITE_FULL") {
      throw new TidingsError("TIDINGS_ERR_STORE_FULL", undefined, { cause: e });
    }
    throw e;
  }
}

/** `:memory:` and the empty path are private to their connection: no other process can see them. */
function inMemory(path: string): boolean {
  return path === ":memory:" || path === "" || path.includes("mode=memory");
}

/** Applies, in order, each `sql/NNN_*.sql` not yet recorded in `schema_migrations`. */
function migrate(sql: Database.Database): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const applied = new Set(sql.prepare<[], number>("SELECT version FROM schema_migrations").pluck().all());
  const record = sql.prepare<[number, string, number]>(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  const files = readdirSync(SQL_DIR)
    .filter((f) => /^\d+_[\w.-]+\.sql$/.test(f))
    .map((name) => ({ name, version: Number.parseInt(name, 10) }))
    .sort((a, b) => a.version - b.version);
  for (const [i, f] of files.entries()) {
    if (i > 0 && files[i - 1]!.version === f.version) {
      throw new TidingsError("TIDINGS_ERR_INTERNAL", `two migrations numbered ${f.version} in ${fileURLToPath(SQL_DIR)}`);
    }
    if (applied.has(f.version)) continue;
    const text = readFileSync(new URL(f.name, SQL_DIR), "utf8");
    sql.transaction(() => {
      sql.exec(text);
      record.run(f.version, f.name, Date.now());
    }).immediate();
  }
}

