import type {
  AppendEntry,
  ClaimPolicy,
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
import { newEpoch } from "../message-id.js";
import { MemoryLog } from "./log.js";
import { MemoryCommands } from "./commands.js";
import { MemoryOwners } from "./owners.js";

/** The reference engine: everything in this process's memory, gone at exit. */
export class MemoryStore implements Store {
  readonly engine = "memory";
  readonly capabilities = { transactional: false, shared: false } as const;
  private readonly epoch = newEpoch();
  private readonly logs = new Map<string, MemoryLog>();
  private readonly commands = new Map<string, MemoryCommands>();
  private readonly owners = new Map<string, MemoryOwners>();
  private readonly listeners = new Set<(db: string) => void>();

  async open(): Promise<void> {}
  async close(): Promise<void> {
    this.listeners.clear();
  }

  private log(db: string): MemoryLog {
    let log = this.logs.get(db);
    if (!log) {
      log = new MemoryLog(this.epoch);
      this.logs.set(db, log);
    }
    return log;
  }

  private cmds(db: string): MemoryCommands {
    let c = this.commands.get(db);
    if (!c) {
      c = new MemoryCommands();
      this.commands.set(db, c);
    }
    return c;
  }

  async append(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    const out = this.log(db).append(entries, Date.now());
    for (const l of this.listeners) l(db);
    return out;
  }
  async read(db: string, query: ReadQuery): Promise<ReadResult> {
    return this.log(db).read(query);
  }
  async head(db: string): Promise<string | null> {
    return this.log(db).head();
  }
  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.log(db).trim(policy, now);
  }
  onAppend(listener: (db: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    let owners = this.owners.get(db);
    if (owners === undefined) this.owners.set(db, (owners = new MemoryOwners()));
    return owners.claim(key, owner, policy);
  }
  async trimOwners(db: string, now: number): Promise<number> {
    return this.owners.get(db)?.trim(now) ?? 0;
  }

  async createCommand(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    const r = this.cmds(db).create(c);
    return { command: { ...r.command, db }, created: r.created };
  }
  async getCommand(db: string, id: string): Promise<CommandRecord | null> {
    return withDb(db, this.cmds(db).get(id));
  }
  async findCommandByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    return withDb(db, this.cmds(db).findByKey(address, idempotencyKey));
  }
  async listCommands(db: string, filter: CommandFilter): Promise<CommandRecord[]> {
    return this.cmds(db).list(filter).map((r) => ({ ...r, db }));
  }
  async countOpenCommands(db: string, address: string): Promise<number> {
    return this.cmds(db).countOpen(address);
  }
  async claimCommands(
    db: string,
    address: string,
    claimer: string,
    limit: number,
    now: number,
    leaseMs: number,
  ): Promise<CommandRecord[]> {
    return this.cmds(db).claim(address, claimer, limit, now, leaseMs).map((r) => ({ ...r, db }));
  }
  async startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    return withDb(db, this.cmds(db).start(id, claimer, now));
  }
  async renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    return this.cmds(db).renew(claimer, now, leaseMs);
  }
  async releaseClaims(db: string, claimer: string): Promise<number> {
    return this.cmds(db).release(claimer);
  }
  async finishCommand(
    db: string,
    id: string,
    outcome: CommandOutcome,
    claimer: string | null,
    now: number,
  ): Promise<FinishResult> {
    const r = this.cmds(db).finish(id, outcome, claimer, now);
    return { command: withDb(db, r.command), changed: r.changed };
  }
  async expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    return this.cmds(db).expire(now).map((r) => ({ ...r, db }));
  }
}

function withDb(db: string, r: CommandRecord | null): CommandRecord | null {
  return r === null ? null : { ...r, db };
}
