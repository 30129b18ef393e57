/**
 * The base every built-in engine extends, in the spirit of socket.io-adapter's
 * ClusterAdapter: the store contract's public methods, the wake-up hub and the
 * bookkeeping are written once here; an engine fills in small `do*` hooks and hands over
 * its command table. Ownership (`claimOwner`) stays in each engine.
 */
import type {
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
  StoreCapabilities,
} from "./store.js";
import { storeUnavailable } from "./store-errors.js";
import { WakeupHub } from "./wakeups.js";

type Awaitable<T> = T | Promise<T>;

/** An engine's commands, each method taking the database first; semantics as in store.ts. */
export interface EngineCommands {
  create(db: string, c: NewCommand): Awaitable<{ command: CommandRecord; created: boolean }>;
  get(db: string, id: string): Awaitable<CommandRecord | null>;
  findByKey(db: string, address: string, idempotencyKey: string): Awaitable<CommandRecord | null>;
  list(db: string, filter: CommandFilter): Awaitable<CommandRecord[]>;
  countOpen(db: string, address: string): Awaitable<number>;
  claim(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): Awaitable<CommandRecord[]>;
  start(db: string, id: string, claimer: string, now: number): Awaitable<CommandRecord | null>;
  renew(db: string, claimer: string, now: number, leaseMs: number): Awaitable<number>;
  release(db: string, claimer: string): Awaitable<number>;
  finish(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): Awaitable<FinishResult>;
  expire(db: string, now: number): Awaitable<CommandRecord[]>;
}

export abstract class EngineStore {
  abstract readonly engine: string;
  abstract readonly capabilities: StoreCapabilities;
  protected readonly wakeups: WakeupHub;

  constructor(onListenerError?: (error: unknown) => void) {
    this.wakeups = new WakeupHub(onListenerError);
  }

  abstract open(): Promise<void>;

  /** Releases connections and timers; safe to call twice. */
  async close(): Promise<void> {
    this.wakeups.clear();
    await this.doClose();
  }

  // ---- hooks -------------------------------------------------------------------------------

  protected abstract doClose(): Promise<void>;
  protected abstract doAppend(db: string, entries: readonly AppendEntry[]): Awaitable<AppendResult>;
  protected abstract doRead(db: string, query: ReadQuery): Awaitable<ReadResult>;
  protected abstract doHead(db: string): Awaitable<string | null>;
  protected abstract doTrim(db: string, policy: RetentionPolicy, now: number): Awaitable<number>;
  /** The command table; throws when the store is not open. */
  protected abstract commandTable(): EngineCommands;

  /** After this instance's append committed. By default listeners are woken at once. */
  protected appended(db: string): void {
    this.wakeups.fire(db);
  }

  /** Runs every write: an engine turns its driver's failures into the catalogue's here. */
  protected write<T>(op: () => T): T {
    return op();
  }

  /** Runs every operation: a lost connection to the engine answers 503, not 500 (store-errors.ts). */
  private async guard<T>(op: () => Awaitable<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw storeUnavailable(e, this.engine) ?? e;
    }
  }

  /** A write, through the engine's `write` hook, guarded as every operation. */
  private guardWrite<T>(op: () => Awaitable<T>): Promise<T> {
    return this.guard(() => this.write(op));
  }

  // ---- the log -----------------------------------------------------------------------------

  async append(db: string, entries: readonly AppendEntry[]): Promise<AppendResult> {
    this.wakeups.touch(db);
    const stored = await this.guardWrite(() => this.doAppend(db, entries));
    this.appended(db);
    return stored;
  }
  async read(db: string, query: ReadQuery): Promise<ReadResult> {
    this.wakeups.touch(db);
    return this.guard(() => this.doRead(db, query));
  }
  async head(db: string): Promise<string | null> {
    this.wakeups.touch(db);
    return this.guard(() => this.doHead(db));
  }
  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    return this.guardWrite(() => this.doTrim(db, policy, now));
  }
  onAppend(listener: (db: string) => void): () => void {
    return this.wakeups.listen(listener);
  }

  // ---- commands ----------------------------------------------------------------------------

  async createCommand(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    return this.guardWrite(() => this.commandTable().create(db, c));
  }
  async getCommand(db: string, id: string): Promise<CommandRecord | null> {
    return this.guard(() => this.commandTable().get(db, id));
  }
  async findCommandByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    return this.guard(() => this.commandTable().findByKey(db, address, idempotencyKey));
  }
  async listCommands(db: string, filter: CommandFilter): Promise<CommandRecord[]> {
    return this.guard(() => this.commandTable().list(db, filter));
  }
  async countOpenCommands(db: string, address: string): Promise<number> {
    return this.guard(() => this.commandTable().countOpen(db, address));
  }
  async claimCommands(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number): Promise<CommandRecord[]> {
    return this.guardWrite(() => this.commandTable().claim(db, address, claimer, limit, now, leaseMs));
  }
  async startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    return this.guardWrite(() => this.commandTable().start(db, id, claimer, now));
  }
  async renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    return this.guardWrite(() => this.commandTable().renew(db, claimer, now, leaseMs));
  }
  async releaseClaims(db: string, claimer: string): Promise<number> {
    return this.guardWrite(() => this.commandTable().release(db, claimer));
  }
  async finishCommand(db: string, id: string, outcome: CommandOutcome, claimer: string | null, now: number): Promise<FinishResult> {
    return this.guardWrite(() => this.commandTable().finish(db, id, outcome, claimer, now));
  }
  async expireCommands(db: string, now: number): Promise<CommandRecord[]> {
    return this.guardWrite(() => this.commandTable().expire(db, now));
  }
}
