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
  StoreCapabilities,
  StoredMessage,
} from "../../src/stores/store.js";
import { MemoryStore } from "../../src/stores/memory/index.js";

/**
 * The real memory engine behind a thin layer that counts log reads. With `shared: true`
 * the core treats it like PostgreSQL or Redis: it learns of new messages only through
 * `onAppend` and re-reads the store, which is the path whose cost we want to count.
 */
export class CountingStore implements Store {
  readonly engine = "memory";
  readonly capabilities: StoreCapabilities;
  readonly inner: MemoryStore;
  reads: ReadQuery[] = [];

  /** `inner`: another counter's store, for two instances sharing one log. */
  constructor(opts: { shared?: boolean; inner?: MemoryStore } = {}) {
    this.capabilities = { transactional: false, shared: opts.shared ?? false };
    this.inner = opts.inner ?? new MemoryStore();
  }

  /** Reads since the last call, then starts counting afresh. */
  takeReads(): ReadQuery[] {
    const r = this.reads;
    this.reads = [];
    return r;
  }

  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  append(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    return this.inner.append(db, entries);
  }
  read(db: string, query: ReadQuery): Promise<ReadResult> {
    this.reads.push(query);
    return this.inner.read(db, query);
  }
  head(db: string): Promise<string | null> {
    return this.inner.head(db);
  }
  trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.inner.trim(db, policy, now);
  }
  onAppend(listener: (db: string) => void): () => void {
    return this.inner.onAppend(listener);
  }
  claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    return this.inner.claimOwner(db, key, owner, policy);
  }
  trimOwners(db: string, now: number): Promise<number> {
    return this.inner.trimOwners(db, now);
  }
  createCommand(db: string, command: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    return this.inner.createCommand(db, command);
  }
  getCommand(db: string, id: string): Promise<CommandRecord | null> {
    return this.inner.getCommand(db, id);
  }
  findCommandByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    return this.inner.findCommandByKey(db, address, idempotencyKey);
  }
  listCommands(db: string, filter: CommandFilter): Promise<CommandRecord[]> {
    return this.inner.listCommands(db, filter);
  }
  countOpenCommands(db: string, address: string): Promise<number> {
    return this.inner.countOpenCommands(db, address);
  }
  claimCommands(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): Promise<CommandRecord[]> {
    return this.inner.claimCommands(db, address, claimer, limit, now, leaseMs);
  }
  startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    return this.inner.startCommand(db, id, claimer, now);
  }
  renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    return this.inner.renewClaims(db, claimer, now, leaseMs);
  }
  releaseClaims(db: string, claimer: string): Promise<number> {
    return this.inner.releaseClaims(db, claimer);
  }
  finishCommand(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): Promise<FinishResult> {
    return this.inner.finishCommand(db, id, outcome, claimer, now);
  }
  expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    return this.inner.expireCommands(db, now);
  }
}
