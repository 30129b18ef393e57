import { TidingsError } from "../../errors.js";
import postgres from "postgres";
import type { AppendEntry, ClaimPolicy, ReadQuery, ReadResult, RetentionPolicy, Store, StoredMessage } from "../store.js";
import type { HorizonProbe, SqlHandle, TransactionalStore } from "../capabilities.js";
import { EngineStore } from "../engine-base.js";
import type { AppliedMigration } from "../migrations.js";
import { Coalescer, HeadPoll } from "../wakeups.js";
import { checkSchemaName, migrate, notifyChannel } from "./migrate.js";
import { PostgresLog } from "./log.js";
import { PostgresCommands } from "./commands.js";
import { PostgresOwners } from "./owners.js";

export type { SqlHandle } from "../capabilities.js";

export interface PostgresStoreOptions {
  /** postgres://user:pass@host:port/database; query parameters go to postgres.js and the server. */
  readonly url: string;
  /** Schema holding every table; one per deployment (or per test file). @default "tidings" */
  readonly schema?: string;
  /** Safety-net poll for wake-ups lost while LISTEN was disconnected. @default 1000 */
  readonly pollIntervalMs?: number;
  /** Failures of background work (polls); they are retried on the next tick. @default ignored */
  readonly onError?: (error: unknown) => void;
}

/**
 * While rows wait above the horizon, how often to look whether they became readable: one
 * small query per instance, only while something is held back. Short, because every short
 * write transaction anywhere in the cluster (command steps included) holds rows back briefly.
 */
const HORIZON_RECHECK_MS = 5;

interface Opened {
  readonly sql: postgres.Sql;
  readonly log: PostgresLog;
  readonly commands: PostgresCommands;
  readonly owners: PostgresOwners;
  readonly unlisten: () => Promise<void>;
  readonly poll: HeadPoll;
}

/**
 * Shared by many server instances. The log is ordered by (transaction id, row id) and
 * read only below the oldest running transaction, so late commits are never skipped
 * (DESIGN.md, "The ordered-log pitfall"). Wake-ups come from LISTEN/NOTIFY carrying the
 * database name only, a slow poll as safety net, and a fast re-check while a read found
 * rows held back by an open older transaction.
 *
 * Operators: a write transaction left open anywhere in the cluster holds every reader
 * back; watch `horizonLag()` and set `idle_in_transaction_session_timeout`.
 */
export class PostgresStore extends EngineStore implements Store, TransactionalStore, HorizonProbe {
  readonly engine = "postgres";
  readonly capabilities = { transactional: true, shared: true, horizonLag: true } as const;
  readonly schema: string;
  private newer: readonly AppliedMigration[] = [];
  private readonly pollIntervalMs: number;
  private opened: Opened | null = null;
  private readonly notifier = new Coalescer((err) => this.report(err));
  /** Databases with rows held above the horizon, and their readable head when noticed. */
  private readonly held = new Map<string, string | null>();
  private heldTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: PostgresStoreOptions) {
    super((err) => options.onError?.(err));
    this.schema = options.schema ?? "tidings";
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    checkSchemaName(this.schema);
  }

  async open(): Promise<void> {
    if (this.opened) return;
    const sql = postgres(this.options.url, {
      onnotice: () => {},
      connection: { application_name: "tidings" },
      ...poolSize(this.options.url),
    });
    try {
      const { epoch, newer } = await migrate(sql, this.schema);
      this.newer = newer;
      // postgres.js 3.4.9 fetches the array types on every new connection and drops that
      // query's promise: a backend terminated during it (a reconnect after
      // pg_terminate_backend) ends the process with an unhandled rejection
      // (porsager/postgres#1192, #1223). The pool's first connections registered them in
      // the options every connection shares, so later ones skip the fetch.
      sql.options.fetch_types = false;
      // postgres.js re-LISTENs after a reconnect and calls onlisten again: notifications
      // sent meanwhile are lost, so every known database is woken to re-read.
      const { unlisten } = await sql.listen(
        notifyChannel(this.schema),
        (db) => {
          this.wakeups.touch(db);
          this.wakeups.fire(db);
        },
        () => this.wakeups.fireKnown(),
      );
      const log = new PostgresLog(sql, this.schema, epoch);
      const heads = async (dbs: string[]) => [...(await log.heads(dbs))].map(([db, s]) => [db, s.head] as const);
      const poll = new HeadPoll(this.pollIntervalMs, this.wakeups, heads, (err) => this.report(err));
      this.opened = {
        sql,
        log,
        commands: new PostgresCommands(sql, this.schema),
        owners: new PostgresOwners(sql, this.schema),
        unlisten,
        poll,
      };
      poll.start();
    } catch (err) {
      await sql.end({ timeout: 5 });
      throw err;
    }
  }

  protected async doClose(): Promise<void> {
    const opened = this.opened;
    this.opened = null;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    if (!opened) return;
    opened.poll.stop();
    // Unlisten first so that postgres.js does not try to re-LISTEN as its connection closes.
    await opened.unlisten().catch(() => {});
    // The timeout matters: in postgres.js 3.4.9 a connection whose backend died under a
    // query never ends on its own (porsager/postgres#1097); it is destroyed after 5 s.
    await opened.sql.end({ timeout: 5 });
  }

  /** Migrations a newer tidings applied to the schema, tolerated because declared compatible (a rolling upgrade). */
  get newerMigrations(): readonly AppliedMigration[] {
    return this.newer;
  }

  private get o(): Opened {
    if (!this.opened) throw new TidingsError("TIDINGS_ERR_INTERNAL", "PostgresStore is not open: call open() first");
    return this.opened;
  }

  // ---- the log ---------------------------------------------------------------------------

  protected doAppend(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    return this.o.log.append(this.o.sql, db, entries, false);
  }

  /**
   * NOTIFY for appends this store committed itself, after their commit: at most one in
   * flight per database, and one more for whatever committed meanwhile. A crash between
   * commit and NOTIFY is covered by the other instances' safety-net poll.
   */
  protected override appended(db: string): void {
    const { sql } = this.o;
    this.notifier.run(db, () => sql`SELECT pg_notify(${notifyChannel(this.schema)}, ${db})`, () => this.opened !== null);
  }

  /**
   * Transactional publish: appends through the caller's postgres.js handle. Inside
   * `sql.begin(tx => store.appendInTransaction(tx, db, entries))` the messages exist
   * only if that transaction commits, and listeners are woken by its commit. The ids are
   * returned at once; they become readable at commit (or later, behind older transactions).
   * With a plain pool handle the append is a transaction of its own. The handle must
   * reach the database this store was opened on.
   */
  async appendInTransaction(sql: SqlHandle, db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    this.wakeups.touch(db);
    return this.o.log.append(sql, db, entries);
  }

  protected async doRead(db: string, query: ReadQuery): Promise<ReadResult> {
    const { messages, gap, pending, head } = await this.o.log.read(db, query);
    if (pending) this.hold(db, head);
    return { messages, gap };
  }

  protected doHead(db: string): Promise<string | null> {
    return this.o.log.head(db);
  }

  protected doTrim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.o.log.trim(db, policy, now);
  }

  protected commandTable(): PostgresCommands {
    return this.o.commands;
  }

  /**
   * Horizon lag for a metric: milliseconds since the oldest transaction holding a
   * transaction id began, anywhere in the cluster — messages committed after it wait at
   * most that long. 0 when none (or none visible to this role: grant pg_read_all_stats).
   */
  async horizonLag(): Promise<number> {
    return this.o.log.horizonLag();
  }

  // ---- rows held above the horizon -------------------------------------------------------

  /** Background work racing close() fails on the ended pool: not worth reporting. */
  private report(err: unknown): void {
    if (this.opened) this.options.onError?.(err);
  }

  /**
   * A read found committed rows above the horizon: they become readable when an older
   * transaction ends, which may send no NOTIFY for this database. Re-check soon.
   */
  private hold(db: string, head: string | null): void {
    if (!this.held.has(db)) this.held.set(db, head);
    this.scheduleRecheck();
  }

  private scheduleRecheck(): void {
    this.heldTimer ??= setTimeout(() => void this.recheckHeld(), HORIZON_RECHECK_MS).unref();
  }

  private async recheckHeld(): Promise<void> {
    try {
      if (!this.opened) return;
      for (const [db, { head, pending }] of await this.opened.log.heads([...this.held.keys()])) {
        if (head !== this.held.get(db)) {
          this.held.set(db, head);
          this.wakeups.fire(db);
        }
        if (!pending) this.held.delete(db);
      }
    } catch (err) {
      this.report(err);
    } finally {
      this.heldTimer = null;
      if (this.opened && this.held.size > 0) this.scheduleRecheck();
    }
  }

  // ---- ownership -------------------------------------------------------------------------

  async claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    return this.o.owners.claim(db, key, owner, policy);
  }
  async trimOwners(db: string, now: number): Promise<number> {
    return this.o.owners.trim(db, now);
  }
}

/**
 * `?max=N` from the URL as a number: postgres.js keeps URL parameters as strings, and a
 * string `max` silently gave a one-connection pool. Pools under 4 are refused: with 1 or 2
 * connections, postgres.js 3.4.9 never settles queries that waited while their sessions
 * were terminated, and publishing on that instance hangs.
 */
function poolSize(url: string): { max?: number } {
  let raw: string | null;
  try {
    raw = new URL(url).searchParams.get("max");
  } catch {
    return {};
  }
  if (raw === null) return {};
  const max = Number(raw);
  if (!Number.isInteger(max) || max < 4) {
    throw new TidingsError("TIDINGS_ERR_CONFIG", `The PostgreSQL pool size (?max=${raw}) must be an integer of at least 4.`);
  }
  return { max };
}
