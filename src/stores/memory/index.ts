import type { AppendEntry, ClaimPolicy, ReadQuery, ReadResult, RetentionPolicy, Store, StoredMessage } from "../store.js";
import { EngineStore } from "../engine-base.js";
import { newEpoch } from "../message-id.js";
import { MemoryLog } from "./log.js";
import { MemoryCommands } from "./commands.js";
import { MemoryOwners } from "./owners.js";

/** The reference engine: everything in this process's memory, gone at exit. */
export class MemoryStore extends EngineStore implements Store {
  readonly engine = "memory";
  readonly capabilities = { transactional: false, shared: false } as const;
  private readonly epoch = newEpoch();
  private readonly logs = new Map<string, MemoryLog>();
  private readonly commands = new MemoryCommands();
  private readonly owners = new Map<string, MemoryOwners>();

  async open(): Promise<void> {}
  protected async doClose(): Promise<void> {}

  private log(db: string): MemoryLog {
    let log = this.logs.get(db);
    if (!log) {
      log = new MemoryLog(this.epoch);
      this.logs.set(db, log);
    }
    return log;
  }

  protected doAppend(db: string, entries: readonly AppendEntry[]): StoredMessage[] {
    return this.log(db).append(entries, Date.now());
  }
  protected doRead(db: string, query: ReadQuery): ReadResult {
    return this.log(db).read(query);
  }
  protected doHead(db: string): string | null {
    return this.log(db).head();
  }
  protected doTrim(db: string, policy: RetentionPolicy, now: number): number {
    return this.log(db).trim(policy, now);
  }
  protected commandTable(): MemoryCommands {
    return this.commands;
  }

  async claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string> {
    let owners = this.owners.get(db);
    if (owners === undefined) this.owners.set(db, (owners = new MemoryOwners()));
    return owners.claim(key, owner, policy);
  }
  async trimOwners(db: string, now: number): Promise<number> {
    return this.owners.get(db)?.trim(now) ?? 0;
  }
}
