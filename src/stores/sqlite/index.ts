import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type { AppendEntry, AppendResult, ClaimPolicy, ReadQuery, ReadResult, RetentionPolicy, Store } from "../store.js";
import { EngineStore } from "../engine-base.js";
import type { ProcessPresence } from "../capabilities.js";
import { planMigrations, readMigrations } from "../migrations.js";
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
export class SqliteStore extends EngineStore implements Store, ProcessPresence {
  readonly engine = "sqlite";
  readonly capabilities;
  private opened: Opened | null = null;

  constructor(private readonly options: SqliteStoreOptions) {
    super();
    this.capabilities = { transactional: false, shared: false, otherProcesses: !inMemory(options.path) } as const;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    const { path } = this.options;
    if (path !== ":memory:" && path !== "" && !path.startsWith("file:")) makeParentDirectory(path);
    const sql = new Database(path);
    try {
      sql.pragma("journal_mode = WAL");
      sql.pragma("synchronous = NORMAL");
      sql.pragma("busy_timeout = 5000");
      await migrate(sql, path);
      // Created with the file and kept for its lifetime: a recreated file gets a new epoch.
      sql.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)").run(newEpoch());
      const epoch = sql.prepare<[], string>("SELECT value FROM meta WHERE key = 'epoch'").pluck().get()!;
      this.opened = {
        sql,
        log: new SqliteLog(sql, epoch),
        commands: new SqliteCommands(sql),
        owners: new SqliteOwners(sql),
        watcher: this.capabilities.otherProcesses
          ? new CommitWatcher(sql, this.options.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS, (db) => this.wakeups.fire(db))
          : null,
        instances: this.capabilities.otherProcesses ? new Instances(sql) : null,
      };
    } catch (err) {
      sql.close();
      throw err;
    }
  }

  protected async doClose(): Promise<void> {
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

  protected override write<T>(op: () => T): T {
    return whenFull(op);
  }

  protected doAppend(db: string, entries: readonly AppendEntry[]): AppendResult {
    return this.o.log.append(db, entries, Date.now());
  }

  protected override appended(db: string): void {
    // With other processes on the file, reported with their appends, once per tick: the
    // core takes its own appends from the append result and needs no read per append.
    if (this.o.watcher !== null) this.o.watcher.appended(db);
    else super.appended(db);
  }

  protected doRead(db: string, query: ReadQuery): ReadResult {
    return this.o.log.read(db, query);
  }
  protected doHead(db: string): string | null {
    return this.o.log.head(db);
  }
  protected doTrim(db: string, policy: RetentionPolicy, now: number): number {
    return this.o.log.trim(db, policy, now);
  }
  protected commandTable(): SqliteCommands {
    return this.o.commands;
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

/**
 * Applies the migrations this version knows and the file lacks, in one write transaction:
 * processes opening the file together wait for each other (busy_timeout) and apply each once.
 */
async function migrate(sql: Database.Database, path: string): Promise<void> {
  const known = readMigrations(SQL_DIR);
  sql.exec("BEGIN IMMEDIATE");
  try {
    sql.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const columns = sql.prepare<[], string>("SELECT name FROM pragma_table_info('schema_migrations')").pluck().all();
    // Whether older versions may run against it; NULL for rows written before the column.
    if (!columns.includes("compatible")) sql.exec("ALTER TABLE schema_migrations ADD COLUMN compatible INTEGER");
    const applied = sql
      .prepare<[], { version: number; name: string; compatible: number | null }>("SELECT version, name, compatible FROM schema_migrations")
      .all()
      .map((r) => ({ ...r, compatible: r.compatible === null ? null : r.compatible === 1 }));
    const record = sql.prepare<[number, string, number, number]>(
      "INSERT INTO schema_migrations (version, name, compatible, applied_at) VALUES (?, ?, ?, ?)",
    );
    for (const m of planMigrations(known, applied, `The SQLite file ${path}`).toApply) {
      sql.exec(m.text);
      record.run(m.version, m.name, m.compatible ? 1 : 0, Date.now());
    }
    sql.exec("COMMIT");
  } catch (err) {
    if (sql.inTransaction) sql.exec("ROLLBACK");
    throw err;
  }
}

/**
 * Creates the directory of the file and its missing parents, one level at a time: Node 20's
 * recursive mkdirSync never returns for some unwritable paths (under /proc), where this fails.
 */
function makeParentDirectory(path: string): void {
  const dir = dirname(resolve(path));
  if (existsSync(dir)) return;
  makeParentDirectory(dir);
  mkdirSync(dir);
}
