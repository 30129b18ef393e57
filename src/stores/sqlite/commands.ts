import type Database from "better-sqlite3";
import { commandFromRow, type CommandRow as SqlCommandRow } from "../command-row.js";
import type {
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  CommandState,
  FinishResult,
  NewCommand,
} from "../store.js";

type CommandRow = SqlCommandRow<number>;

const COLUMNS = `db, id, address, method, args, state, result, error, idempotency_key, deadline, attempts,
  claimed_by, lease_until, created_at, delivered_at, started_at, finished_at`;
/** Written exactly as in the partial indexes of 001_init.sql, so that the planner uses them. */
const OPEN = "state IN ('pending', 'delivered', 'running')";
const ALL_STATES: readonly CommandState[] = [
  "pending",
  "delivered",
  "running",
  "succeeded",
  "failed",
  "expired",
  "cancelled",
];

/** Commands of every database in one table; the same transitions as the memory engine. */
export class SqliteCommands {
  private readonly byId;
  private readonly byKey;
  private readonly insert;
  private readonly listAll;
  private readonly listAddress;
  private readonly countOpenStmt;
  private readonly claimable;
  private readonly claimOne;
  private readonly startStmt;
  private readonly renewStmt;
  private readonly releaseStmt;
  private readonly finishStmt;
  private readonly expireStmt;
  private readonly createTx;
  private readonly claimTx;

  constructor(sql: Database.Database) {
    this.byId = sql.prepare<[string, string], CommandRow>(`SELECT ${COLUMNS} FROM commands WHERE db = ? AND id = ?`);
    this.byKey = sql.prepare<[string, string, string], CommandRow>(
      `SELECT ${COLUMNS} FROM commands WHERE db = ? AND address = ? AND idempotency_key = ?`,
    );
    this.insert = sql.prepare<[Record<string, unknown>], CommandRow>(
      `INSERT INTO commands (db, id, address, method, args, state, idempotency_key, deadline, created_at)
       VALUES (@db, @id, @address, @method, @args, 'pending', @idempotencyKey, @deadline, @now)
       RETURNING ${COLUMNS}`,
    );
    // Absent bounds are bound as the widest range so that one statement serves every filter.
    // INDEXED BY: without ANALYZE statistics the planner picks (db, created_at) even when
    // the address is known.
    const listWhere =
      "state IN (SELECT value FROM json_each(@states)) AND created_at >= @since AND created_at < @until";
    const newestFirst = "ORDER BY created_at DESC, rowid DESC LIMIT @limit";
    this.listAll = sql.prepare<[Record<string, unknown>], CommandRow>(
      `SELECT ${COLUMNS} FROM commands INDEXED BY commands_db_created
       WHERE db = @db AND ${listWhere} ${newestFirst}`,
    );
    this.listAddress = sql.prepare<[Record<string, unknown>], CommandRow>(
      `SELECT ${COLUMNS} FROM commands INDEXED BY commands_db_address_created
       WHERE db = @db AND address = @address AND ${listWhere} ${newestFirst}`,
    );
    this.countOpenStmt = sql
      .prepare<[string, string], number>(`SELECT count(*) FROM commands WHERE db = ? AND address = ? AND ${OPEN}`)
      .pluck();
    this.claimable = sql
      .prepare<[string, string, number, number], number>(
        `SELECT rowid FROM commands
         WHERE db = ? AND address = ? AND ${OPEN} AND (state = 'pending' OR lease_until IS NULL OR lease_until <= ?)
         ORDER BY created_at, rowid LIMIT ?`,
      )
      .pluck();
    this.claimOne = sql.prepare<[Record<string, unknown>], CommandRow>(
      `UPDATE commands SET state = CASE state WHEN 'pending' THEN 'delivered' ELSE state END,
         attempts = attempts + 1, claimed_by = @claimer, lease_until = @leaseUntil, delivered_at = @now
       WHERE rowid = @rowid RETURNING ${COLUMNS}`,
    );
    this.startStmt = sql.prepare<[Record<string, unknown>], CommandRow>(
      `UPDATE commands SET state = 'running', started_at = coalesce(started_at, @now)
       WHERE db = @db AND id = @id AND claimed_by = @claimer AND state IN ('delivered', 'running')
       RETURNING ${COLUMNS}`,
    );
    this.renewStmt = sql.prepare<[Record<string, unknown>]>(
      `UPDATE commands SET lease_until = @leaseUntil WHERE db = @db AND claimed_by = @claimer AND ${OPEN}`,
    );
    this.releaseStmt = sql.prepare<[Record<string, unknown>]>(
      `UPDATE commands SET state = 'pending', claimed_by = NULL, lease_until = NULL
       WHERE db = @db AND claimed_by = @claimer AND ${OPEN}`,
    );
    // The state condition makes the first outcome win; a client may only answer what it holds.
    this.finishStmt = sql.prepare<[Record<string, unknown>], CommandRow>(
      `UPDATE commands SET state = @state, result = @result, error = @error, finished_at = @now,
         claimed_by = NULL, lease_until = NULL
       WHERE db = @db AND id = @id AND ${OPEN} AND (@claimer IS NULL OR claimed_by = @claimer)
       RETURNING ${COLUMNS}`,
    );
    this.expireStmt = sql.prepare<[Record<string, unknown>], CommandRow & { seq: number }>(
      `UPDATE commands SET state = 'expired', finished_at = @now, claimed_by = NULL, lease_until = NULL
       WHERE db = @db AND deadline <= @now AND ${OPEN}
       RETURNING rowid AS seq, ${COLUMNS}`,
    );

    this.createTx = sql.transaction((db: string, c: NewCommand): { command: CommandRecord; created: boolean } => {
      if (c.idempotencyKey !== null) {
        const existing = this.findByKey(db, c.address, c.idempotencyKey);
        if (existing !== null) return { command: existing, created: false };
      }
      const row = this.insert.get({ db, ...c });
      return { command: toRecord(row!), created: true };
    });

    this.claimTx = sql.transaction(
      (db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): CommandRecord[] =>
        this.claimable.all(db, address, now, limit).map((rowid) =>
          toRecord(this.claimOne.get({ rowid, claimer, leaseUntil: now + leaseMs, now })!),
        ),
    );
  }

  create(db: string, c: NewCommand): { command: CommandRecord; created: boolean } {
    return this.createTx.immediate(db, c);
  }

  get(db: string, id: string): CommandRecord | null {
    const row = this.byId.get(db, id);
    return row ? toRecord(row) : null;
  }

  findByKey(db: string, address: string, idempotencyKey: string): CommandRecord | null {
    const row = this.byKey.get(db, address, idempotencyKey);
    return row ? toRecord(row) : null;
  }

  list(db: string, f: CommandFilter): CommandRecord[] {
    const params = {
      db,
      states: JSON.stringify(f.states ?? ALL_STATES),
      since: f.since ?? Number.MIN_SAFE_INTEGER,
      until: f.until ?? Number.MAX_SAFE_INTEGER,
      limit: f.limit,
    };
    const rows =
      f.address === undefined ? this.listAll.all(params) : this.listAddress.all({ ...params, address: f.address });
    return rows.map(toRecord);
  }

  countOpen(db: string, address: string): number {
    return this.countOpenStmt.get(db, address) ?? 0;
  }

  /** Atomic: selecting and updating happen in one immediate transaction. */
  claim(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): CommandRecord[] {
    return this.claimTx.immediate(db, address, claimer, limit, now, leaseMs);
  }

  start(db: string, id: string, claimer: string, now: number): CommandRecord | null {
    const row = this.startStmt.get({ db, id, claimer, now });
    return row ? toRecord(row) : null;
  }

  renew(db: string, claimer: string, now: number, leaseMs: number): number {
    return this.renewStmt.run({ db, claimer, leaseUntil: now + leaseMs }).changes;
  }

  release(db: string, claimer: string): number {
    return this.releaseStmt.run({ db, claimer }).changes;
  }

  finish(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): FinishResult {
    const row = this.finishStmt.get({
      db,
      id,
      claimer,
      now,
      state: outcome.state,
      result: outcome.state === "succeeded" ? outcome.result : null,
      error: outcome.state === "failed" ? JSON.stringify(outcome.error) : null,
    });
    if (row) return { command: toRecord(row), changed: true };
    return { command: this.get(db, id), changed: false };
  }

  expire(db: string, now: number): CommandRecord[] {
    // RETURNING has no order: put them back in insertion order, as the memory engine does.
    return this.expireStmt
      .all({ db, now })
      .sort((a, b) => a.seq - b.seq)
      .map(toRecord);
  }
}

const toRecord = commandFromRow;
