import type postgres from "postgres";
import { commandFromRow, type CommandRow } from "../command-row.js";
import { retryReads } from "./retry-reads.js";
import type {
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  FinishResult,
  NewCommand,
} from "../store.js";

interface Row extends CommandRow<string> {
  seq: string;
}

const toRecord = commandFromRow;

/** UPDATE ... RETURNING gives no order: put rows back oldest first, ties in insertion order. */
function inOrder(rows: readonly Row[]): CommandRecord[] {
  const key = (r: Row) => [BigInt(r.created_at), BigInt(r.seq)] as const;
  return [...rows]
    .sort((a, b) => {
      const [ac, as] = key(a);
      const [bc, bs] = key(b);
      return ac !== bc ? (ac < bc ? -1 : 1) : as < bs ? -1 : 1;
    })
    .map(toRecord);
}

/**
 * Commands in one table for all databases. Concurrency comes from the database: claims
 * skip rows another claimer holds locked, and a final state is only written over a
 * non-final one, so the first outcome wins.
 */
export class PostgresCommands {
  private readonly t: postgres.Helper<string>;

  constructor(private readonly sql: postgres.Sql, schema: string) {
    this.t = sql(schema);
  }

  private get notFinal() {
    return this.sql`state NOT IN ('succeeded', 'failed', 'expired', 'cancelled')`;
  }

  async create(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    const [inserted] = await this.sql<Row[]>`
      INSERT INTO ${this.t}.commands (db, id, address, method, args, idempotency_key, deadline, created_at)
      VALUES (${db}, ${c.id}, ${c.address}, ${c.method}, ${c.args}, ${c.idempotencyKey}, ${c.deadline}, ${c.now})
      ON CONFLICT (db, address, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING *`;
    if (inserted) return { command: toRecord(inserted), created: true };
    // Lost to the same idempotency key: ON CONFLICT waited for that insert, so it is visible now.
    const existing = await this.findByKey(db, c.address, c.idempotencyKey!);
    return { command: existing!, created: false };
  }

  async findByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    const [row] = await retryReads(() => this.sql<Row[]>`
      SELECT * FROM ${this.t}.commands WHERE db = ${db} AND address = ${address} AND idempotency_key = ${idempotencyKey}`);
    return row ? toRecord(row) : null;
  }

  async get(db: string, id: string): Promise<CommandRecord | null> {
    const [row] = await retryReads(() => this.sql<Row[]>`SELECT * FROM ${this.t}.commands WHERE db = ${db} AND id = ${id}`);
    return row ? toRecord(row) : null;
  }

  async list(db: string, f: CommandFilter): Promise<CommandRecord[]> {
    const sql = this.sql;
    const rows = await retryReads(() => sql<Row[]>`
      SELECT * FROM ${this.t}.commands WHERE db = ${db}
      ${f.address !== undefined ? sql`AND address = ${f.address}` : sql``}
      ${f.states ? sql`AND state = ANY(${[...f.states]}::text[])` : sql``}
      ${f.since !== undefined ? sql`AND created_at >= ${f.since}` : sql``}
      ${f.until !== undefined ? sql`AND created_at < ${f.until}` : sql``}
      ORDER BY created_at DESC, seq DESC LIMIT ${f.limit}`);
    return rows.map(toRecord);
  }

  async countOpen(db: string, address: string): Promise<number> {
    const [row] = await retryReads(() => this.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM ${this.t}.commands WHERE db = ${db} AND address = ${address} AND ${this.notFinal}`);
    return row!.n;
  }

  async claim(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): Promise<CommandRecord[]> {
    // Materialized so that it runs once: the rows it locks are exactly the rows updated.
    const rows = await this.sql<Row[]>`
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${this.t}.commands
        WHERE db = ${db} AND address = ${address}
          AND (state = 'pending' OR (state IN ('delivered', 'running') AND (lease_until IS NULL OR lease_until <= ${now})))
        ORDER BY created_at, seq LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE ${this.t}.commands c SET
        state = CASE WHEN c.state = 'pending' THEN 'delivered' ELSE c.state END,
        attempts = c.attempts + 1, claimed_by = ${claimer}, lease_until = ${now + leaseMs}, delivered_at = ${now}
      FROM picked
      WHERE c.db = ${db} AND c.id = picked.id
      RETURNING c.*`;
    return inOrder(rows);
  }

  async start(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    const [row] = await this.sql<Row[]>`
      UPDATE ${this.t}.commands SET state = 'running', started_at = coalesce(started_at, ${now})
      WHERE db = ${db} AND id = ${id} AND claimed_by = ${claimer} AND state IN ('delivered', 'running')
      RETURNING *`;
    return row ? toRecord(row) : null;
  }

  async renew(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    const res = await this.sql`
      UPDATE ${this.t}.commands SET lease_until = ${now + leaseMs}
      WHERE db = ${db} AND claimed_by = ${claimer} AND ${this.notFinal}`;
    return res.count;
  }

  async release(db: string, claimer: string): Promise<number> {
    const res = await this.sql`
      UPDATE ${this.t}.commands SET state = 'pending', claimed_by = NULL, lease_until = NULL
      WHERE db = ${db} AND claimed_by = ${claimer} AND ${this.notFinal}`;
    return res.count;
  }

  async finish(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): Promise<FinishResult> {
    const result = outcome.state === "succeeded" ? outcome.result : null;
    const error = outcome.state === "failed" ? JSON.stringify(outcome.error) : null;
    const [row] = await this.sql<Row[]>`
      UPDATE ${this.t}.commands SET state = ${outcome.state}, result = ${result}, error = ${error},
        finished_at = ${now}, claimed_by = NULL, lease_until = NULL
      WHERE db = ${db} AND id = ${id} AND ${this.notFinal}
        ${claimer === null ? this.sql`` : this.sql`AND claimed_by = ${claimer}`}
      RETURNING *`;
    if (row) return { command: toRecord(row), changed: true };
    return { command: await this.get(db, id), changed: false };
  }

  async expire(db: string, now: number): Promise<CommandRecord[]> {
    const rows = await this.sql<Row[]>`
      UPDATE ${this.t}.commands SET state = 'expired', finished_at = ${now}, claimed_by = NULL, lease_until = NULL
      WHERE db = ${db} AND deadline IS NOT NULL AND deadline <= ${now} AND ${this.notFinal}
      RETURNING *`;
    return inOrder(rows);
  }
}
