import type { CommandError, CommandRecord, CommandState } from "./store.js";

/**
 * A command as the SQL engines store it (snake_case columns, error as JSON text). Times
 * are numbers in SQLite and bigint text from PostgreSQL; both become milliseconds.
 */
export interface CommandRow<Time extends number | string = number | string> {
  readonly db: string;
  readonly id: string;
  readonly address: string;
  readonly method: string;
  readonly args: string;
  readonly state: CommandState;
  readonly result: string | null;
  readonly error: string | null;
  readonly idempotency_key: string | null;
  readonly deadline: Time | null;
  readonly attempts: number;
  readonly claimed_by: string | null;
  readonly lease_until: Time | null;
  readonly created_at: Time;
  readonly delivered_at: Time | null;
  readonly started_at: Time | null;
  readonly finished_at: Time | null;
}

const ms = (v: number | string | null): number | null => (v === null ? null : Number(v));

export function commandFromRow(r: CommandRow): CommandRecord {
  return {
    id: r.id,
    db: r.db,
    address: r.address,
    method: r.method,
    args: r.args,
    state: r.state,
    result: r.result,
    error: r.error === null ? null : (JSON.parse(r.error) as CommandError),
    idempotencyKey: r.idempotency_key,
    deadline: ms(r.deadline),
    attempts: r.attempts,
    claimedBy: r.claimed_by,
    leaseUntil: ms(r.lease_until),
    createdAt: Number(r.created_at),
    deliveredAt: ms(r.delivered_at),
    startedAt: ms(r.started_at),
    finishedAt: ms(r.finished_at),
  };
}
