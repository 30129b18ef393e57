import type {
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  FinishResult,
  NewCommand,
} from "../store.js";
import { FINAL_COMMAND_STATES } from "../store.js";
import type { EngineCommands } from "../engine-base.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Every database's commands in one map; the reference semantics for every engine. */
export class MemoryCommands implements EngineCommands {
  private readonly byId = new Map<string, Mutable<CommandRecord>>();
  private readonly byIdempotency = new Map<string, string>();

  /** The commands of one database, in creation order. */
  private *of(db: string): Iterable<Mutable<CommandRecord>> {
    for (const r of this.byId.values()) if (r.db === db) yield r;
  }

  create(db: string, c: NewCommand): { command: CommandRecord; created: boolean } {
    if (c.idempotencyKey !== null) {
      const existing = this.findByKey(db, c.address, c.idempotencyKey);
      if (existing !== null) return { command: existing, created: false };
    }
    const record: Mutable<CommandRecord> = {
      id: c.id,
      db,
      address: c.address,
      method: c.method,
      args: c.args,
      state: "pending",
      result: null,
      error: null,
      idempotencyKey: c.idempotencyKey,
      deadline: c.deadline,
      attempts: 0,
      claimedBy: null,
      leaseUntil: null,
      createdAt: c.now,
      deliveredAt: null,
      startedAt: null,
      finishedAt: null,
    };
    this.byId.set(dbKey(db, c.id), record);
    if (c.idempotencyKey !== null) this.byIdempotency.set(idempotencyField(db, c.address, c.idempotencyKey), c.id);
    return { command: { ...record }, created: true };
  }

  get(db: string, id: string): CommandRecord | null {
    const r = this.byId.get(dbKey(db, id));
    return r ? { ...r } : null;
  }

  findByKey(db: string, address: string, idempotencyKey: string): CommandRecord | null {
    const id = this.byIdempotency.get(idempotencyField(db, address, idempotencyKey));
    return id === undefined ? null : this.get(db, id);
  }

  list(db: string, f: CommandFilter): CommandRecord[] {
    const states = f.states ? new Set(f.states) : null;
    const out: CommandRecord[] = [];
    for (const r of this.of(db)) {
      if (f.address !== undefined && r.address !== f.address) continue;
      if (states !== null && !states.has(r.state)) continue;
      if (f.since !== undefined && r.createdAt < f.since) continue;
      if (f.until !== undefined && r.createdAt >= f.until) continue;
      out.push({ ...r });
    }
    // Map keeps insertion order; newest first, ties broken by insertion.
    out.reverse();
    out.sort((a, b) => b.createdAt - a.createdAt);
    return out.slice(0, f.limit);
  }

  countOpen(db: string, address: string): number {
    let n = 0;
    for (const r of this.of(db)) if (r.address === address && !FINAL_COMMAND_STATES.has(r.state)) n++;
    return n;
  }

  claim(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): CommandRecord[] {
    const out: CommandRecord[] = [];
    // Oldest first by createdAt (as listCommands orders); the stable sort keeps insertion order for ties.
    const byAge = [...this.of(db)].sort((a, b) => a.createdAt - b.createdAt);
    for (const r of byAge) {
      if (out.length >= limit) break;
      if (r.address !== address) continue;
      const claimable =
        r.state === "pending" ||
        ((r.state === "delivered" || r.state === "running") && (r.leaseUntil === null || r.leaseUntil <= now));
      if (!claimable) continue;
      if (r.state === "pending") r.state = "delivered";
      r.attempts += 1;
      r.claimedBy = claimer;
      r.leaseUntil = now + leaseMs;
      r.deliveredAt = now;
      out.push({ ...r });
    }
    return out;
  }

  start(db: string, id: string, claimer: string, now: number): CommandRecord | null {
    const r = this.byId.get(dbKey(db, id));
    if (!r || r.claimedBy !== claimer || (r.state !== "delivered" && r.state !== "running")) return null;
    r.state = "running";
    if (r.startedAt === null) r.startedAt = now;
    return { ...r };
  }

  renew(db: string, claimer: string, now: number, leaseMs: number): number {
    let n = 0;
    for (const r of this.of(db)) {
      if (r.claimedBy === claimer && !FINAL_COMMAND_STATES.has(r.state)) {
        r.leaseUntil = now + leaseMs;
        n++;
      }
    }
    return n;
  }

  release(db: string, claimer: string): number {
    let n = 0;
    for (const r of this.of(db)) {
      if (r.claimedBy === claimer && !FINAL_COMMAND_STATES.has(r.state)) {
        r.state = "pending";
        r.claimedBy = null;
        r.leaseUntil = null;
        n++;
      }
    }
    return n;
  }

  finish(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): FinishResult {
    const r = this.byId.get(dbKey(db, id));
    if (!r) return { command: null, changed: false };
    if (FINAL_COMMAND_STATES.has(r.state)) return { command: { ...r }, changed: false };
    if (claimer !== null && r.claimedBy !== claimer) return { command: { ...r }, changed: false };
    r.state = outcome.state;
    r.result = outcome.state === "succeeded" ? outcome.result : null;
    r.error = outcome.state === "failed" ? outcome.error : null;
    r.finishedAt = now;
    r.claimedBy = null;
    r.leaseUntil = null;
    return { command: { ...r }, changed: true };
  }

  expire(db: string, now: number): CommandRecord[] {
    const out: CommandRecord[] = [];
    for (const r of this.of(db)) {
      if (r.deadline !== null && r.deadline <= now && !FINAL_COMMAND_STATES.has(r.state)) {
        r.state = "expired";
        r.finishedAt = now;
        r.claimedBy = null;
        r.leaseUntil = null;
        out.push({ ...r });
      }
    }
    return out;
  }
}

/** One entry per database, address and key: the same key may be used at another address. */
function idempotencyField(db: string, address: string, idempotencyKey: string): string {
  return `${db}\u0000${address}\u0000${idempotencyKey}`;
}

function dbKey(db: string, id: string): string {
  return `${db}\u0000${id}`;
}
