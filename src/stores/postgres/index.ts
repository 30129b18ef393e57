import { TidingsError } from "../../errors.js";
import postgres from "postgres";
import type {
  ClaimPolicy,
  AppendEntry,
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  FinishResult,
  NewCommand,
  ReadQuery,
  ReadResult,
  RetentionPolicy,
  Store,
  StoredMessage,
} from "../store.js";
import { migrate, notifyChannel, SCHEMA_PATTERN } from "./migrate.js";
import { PostgresLog } from "./log.js";
import type { SqlHandle } from "../transactional.js";
import { PostgresCommands } from "./commands.js";
import { PostgresOwners } from "./owners.js";

export type { SqlHandle } from "../transactional.js";

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
  readonly poll: NodeJS.Timeout;
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
export class PostgresStore implements Store {
  readonly engine = "postgres";
  readonly capabilities = { transactional: true, shared: true } as const;
  readonly schema: string;
  private readonly pollIntervalMs: number;
  private opened: Opened | null = null;
  private readonly listeners = new Set<(db: string) => void>();
  /** Databases this instance has touched: woken after a reconnect and polled. */
  private readonly known = new Set<string>();
  private readonly notifying = new Set<string>();
  private readonly notifyAgain = new Set<string>();
  /** Last head seen by the safety-net poll. */
  private readonly polledHeads = new Map<string, string | null>();
  /** Databases with rows held above the horizon, and their readable head when noticed. */
  private readonly held = new Map<string, string | null>();
  private heldTimer: NodeJS.Timeout | null = null;
  private polling = false;

  constructor(private readonly options: PostgresStoreOptions) {
    this.schema = options.schema ?? "tidings";
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    if (!SCHEMA_PATTERN.test(this.schema)) {
      throw new Error(`Invalid PostgreSQL schema name ${JSON.stringify(this.schema)}: use [a-z_][a-z0-9_]*, at most 48 characters`);
    }
  }

  async open(): Promise<void> {
    if (this.opened) return;
    const sql = postgres(this.options.url, {
      onnotice: () => {},
      connection: { application_name: "tidings" },
      ...poolSize(this.options.url),
    });
    try {
      const epoch = await migrate(sql, this.schema);
      // postgres.js re-LISTENs after a reconnect and calls onlisten again: notifications
      // sent meanwhile are lost, so every known database is woken to re-read.
      const { unlisten } = await sql.listen(
        notifyChannel(this.schema),
        (db) => this.wake(db),
        () => this.known.forEach((db) => this.fire(db)),
      );
      const poll = setInterval(() => void this.pollHeads(), this.pollIntervalMs).unref();
      this.opened = {
        sql,
        log: new PostgresLog(sql, this.schema, epoch),
        commands: new PostgresCommands(sql, this.schema),
        owners: new PostgresOwners(sql, this.schema),
        unlisten,
        poll,
      };
    } catch (err) {
      await sql.end({ timeout: 5 });
      throw err;
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const opened = this.opened;
    this.opened = null;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    if (!opened) return;
    clearInterval(opened.poll);
    // Unlisten first so that postgres.js does not try to re-LISTEN as its connection closes.
    await opened.unlisten().catch(() => {});
    // The timeout matters: in postgres.js 3.4.9 a connection whose backend died under a
    // query never ends on its own (porsager/postgres#1097); it is destroyed after 5 s.
    await opened.sql.end({ timeout: 5 });
  }

  private get o(): Opened {
    if (!this.opened) throw new Error("PostgresStore is not open: call open() first");
    return this.opened;
  }

  // ---- the log ---------------------------------------------------------------------------

  async append(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    this.known.add(db);
    const stored = await this.o.log.append(this.o.sql, db, entries, false);
    this.notifyCommitted(db);
    return stored;
  }

  /**
   * NOTIFY for appends this store committed itself, after their commit: at most one in
   * flight per database, and one more for whatever committed meanwhile. A crash between
   * commit and NOTIFY is covered by the other instances' safety-net poll.
   */
  private notifyCommitted(db: string): void {
    if (this.notifying.has(db)) {
      this.notifyAgain.add(db);
      return;
    }
    this.notifying.add(db);
    void (async () => {
      try {
        do {
          this.notifyAgain.delete(db);
          await this.o.sql`SELECT pg_notify(${notifyChannel(this.schema)}, ${db})`;
        } while (this.notifyAgain.has(db) && this.opened);
      } catch (err) {
        this.report(err);
      } finally {
        this.notifying.delete(db);
      }
    })();
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
    this.known.add(db);
    return this.o.log.append(sql, db, entries);
  }

  async read(db: string, query: ReadQuery): Promise<ReadResult> {
    this.known.add(db);
    const { messages, gap, pending, head } = await this.o.log.read(db, query);
    if (pending) this.hold(db, head);
    return { messages, gap };
  }

  async head(db: string): Promise<string | null> {
    this.known.add(db);
    return this.o.log.head(db);
  }

  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.o.log.trim(db, policy, now);
  }

  /**
   * Horizon lag for a metric: milliseconds since the oldest transaction holding a
   * transaction id began, anywhere in the cluster — messages committed after it wait at
   * most that long. 0 when none (or none visible to this role: grant pg_read_all_stats).
   */
  async horizonLag(): Promise<number> {
    return this.o.log.horizonLag();
  }

  // ---- wake-ups --------------------------------------------------------------------------

  onAppend(listener: (db: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private wake(db: string): void {
    this.known.add(db);
    this.fire(db);
  }

  private fire(db: string): void {
    for (const l of this.listeners) {
      try {
        l(db);
      } catch (err) {
        this.report(err);
      }
    }
  }

  /** Background work racing close() fails on the ended pool: not worth reporting. */
  private report(err: unknown): void {
    if (this.opened) this.options.onError?.(err);
  }

  /** Safety net: wakes databases whose head moved, in case a NOTIFY was missed. */
  private async pollHeads(): Promise<void> {
    if (this.polling || !this.opened || this.known.size === 0) return;
    this.polling = true;
    try {
      for (const [db, { head }] of await this.opened.log.heads([...this.known])) {
        if (this.polledHeads.has(db) && this.polledHeads.get(db) === head) continue;
        this.polledHeads.set(db, head);
        this.fire(db);
      }
    } catch (err) {
      this.report(err);
    } finally {
      this.polling = false;
    }
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
          this.fire(db);
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

  // ---- ownership and commands ------------------------------------------------------------

  async claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    return this.o.owners.claim(db, key, owner, policy);
  }
  async trimOwners(db: string, now: number): Promise<number> {
    return this.o.owners.trim(db, now);
  }
  async createCommand(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    return this.o.commands.create(db, c);
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
    return this.o.commands.claim(db, address, claimer, limit, now, leaseMs);
  }
  async startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    return this.o.commands.start(db, id, claimer, now);
  }
  async renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    return this.o.commands.renew(db, claimer, now, leaseMs);
  }
  async releaseClaims(db: string, claimer: string): Promise<number> {
    return this.o.commands.release(db, claimer);
  }
  async finishCommand(
    db: string,
    id: string,
    outcome: CommandOutcome,
    claimer: string | null,
    now: number,
  ): Promise<FinishResult> {
    return this.o.commands.finish(db, id, outcome, claimer, now);
  }
  async expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    return this.o.commands.expire(db, now);
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
