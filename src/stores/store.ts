/**
 * The store contract. Every engine (memory, SQLite, PostgreSQL, Redis) implements it and
 * runs the one conformance suite in test/stores/conformance.ts. The memory engine is the
 * reference: when in doubt about a behaviour, it decides.
 */

import type { CommandError, CommandFacts, CommandState } from "../protocol/commands.js";

export type { CommandError, CommandState };

/** A message as the log holds it. `json` is the full message text, `message_id` included. */
export interface StoredMessage {
  /** Opaque, fixed-width, sorts in log order with plain string comparison: `<epoch>:<position>`. */
  readonly id: string;
  readonly channel: string;
  readonly type: string;
  /** Milliseconds since the Unix epoch, stamped by the store at append. */
  readonly ts: number;
  /** The message as JSON text, `message_id` first; serialised once, sent as is by every transport. */
  readonly json: string;
}

/** What the core hands a store to append: already validated and serialised without `message_id`. */
export interface AppendEntry {
  readonly channel: string;
  readonly type: string;
  /** JSON object text, without `message_id` (the store inserts it with `withMessageId`). */
  readonly payload: string;
}

export interface ReadQuery {
  /**
   * Exclusive lower bound. `null` reads from the oldest retained message (or from `sinceTs`).
   * A cursor of another epoch, below what retention removed, or beyond the head is unknown:
   * the result has `gap: true` and starts at the oldest retained message.
   */
  readonly after: string | null;
  /** Only with `after: null`: messages stamped at or after this time. */
  readonly sinceTs?: number;
  /** Only messages on these channels; all channels when absent. */
  readonly channels?: readonly string[];
  readonly limit: number;
}

export interface ReadResult {
  readonly messages: StoredMessage[];
  /** True when `after` was unknown or older than retention: messages were (or may have been) missed. */
  readonly gap: boolean;
}

export interface RetentionPolicy {
  /** Remove messages older than this many milliseconds (0 keeps all ages). */
  readonly maxAgeMs: number;
  /** Keep at most this many messages per database (0 keeps any count). */
  readonly maxCount: number;
}

export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set([
  "succeeded",
  "failed",
  "expired",
  "cancelled",
]);

/** A stored command: its wire facts (protocol/commands.ts) and the database it belongs to. */
export interface CommandRecord extends CommandFacts {
  readonly db: string;
}

export interface NewCommand {
  readonly id: string;
  readonly address: string;
  readonly method: string;
  readonly args: string;
  readonly deadline: number | null;
  readonly idempotencyKey: string | null;
  readonly now: number;
}

/** How long ownership claims live and how many one owner holds (`claimOwner`). */
export interface ClaimPolicy {
  /** The time of the call, ms since the epoch. */
  readonly now: number;
  /** A claim lapses this long after its owner last claimed it. */
  readonly ttlMs: number;
  /** Most claims one owner holds per database; a new one past it frees the least recently renewed. */
  readonly maxPerOwner: number;
}

export interface CommandFilter {
  readonly address?: string;
  readonly states?: readonly CommandState[];
  /** createdAt >= since */
  readonly since?: number;
  /** createdAt < until */
  readonly until?: number;
  readonly limit: number;
}

export type CommandOutcome =
  | { readonly state: "succeeded"; readonly result: string }
  | { readonly state: "failed"; readonly error: CommandError }
  | { readonly state: "expired" }
  | { readonly state: "cancelled" };

export interface FinishResult {
  readonly command: CommandRecord | null;
  /** False when the command was already final (the first outcome won) or is not found. */
  readonly changed: boolean;
}

/**
 * What `append` returns: the messages with their ids, in order. An engine that other
 * processes may append to without being `shared` (an SQLite file) also gives `previous`:
 * the id of the message just before them in the database's log (null when none), read
 * under the same write lock, so the core can tell whether it missed another's append.
 */
export type AppendResult = StoredMessage[] & { readonly previous?: string | null };

export interface StoreCapabilities {
  /** Messages can be appended inside the application's own transaction (PostgreSQL). */
  readonly transactional: boolean;
  /**
   * Several server processes can share this store; the core then learns of new messages
   * only through `onAppend` and re-reads the log after its head. When false (memory,
   * SQLite), this process is the only writer and `append` results are the next log entries.
   */
  readonly shared: boolean;
  /**
   * Not `shared`, yet other processes of this host may append to the same store (several
   * servers, or an application's `createBus`, on one SQLite file). `onAppend` then reports
   * their appends within a bounded delay, and `append` results carry `previous`, so that
   * the core puts its own appends in its tail without a read only when nothing came between.
   * Such a store offers `anotherProcessAlive()` (capabilities.ts, `ProcessPresence`):
   * command claims found at start may be another live process's, left to their leases.
   */
  readonly otherProcesses?: boolean;
  /** The store offers `horizonLag()` (capabilities.ts, `HorizonProbe`): a metric of how long messages wait to be readable. */
  readonly horizonLag?: boolean;
}

export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Short engine name for logs and metrics: memory, sqlite, postgres, redis. */
  readonly engine: string;

  /** Connects, creates or migrates the schema. Called once before anything else. */
  open(): Promise<void>;
  /** Releases connections and timers; safe to call twice. */
  close(): Promise<void>;

  // ---- the log -------------------------------------------------------------------------
  /** Appends in order, atomically: all entries or none. Returns them with ids and timestamps. */
  append(db: string, entries: readonly AppendEntry[]): Promise<AppendResult>;
  read(db: string, query: ReadQuery): Promise<ReadResult>;
  /** Id of the newest readable message of `db`, or null when its log is empty. */
  head(db: string): Promise<string | null>;
  /** Applies retention now; returns how many messages were removed. */
  trim(db: string, policy: RetentionPolicy, now: number): Promise<number>;
  /**
   * Wake-up hint: the listener is called with a database name when new messages may be
   * readable there (appended by any process sharing the store). Never carries data.
   * Returns an unsubscribe function.
   */
  onAppend(listener: (db: string) => void): () => void;

  // ---- ownership -----------------------------------------------------------------------
  /**
   * First writer wins: records `owner` for `key` unless a live claim of another owner is
   * recorded, and returns the owner of the live claim. A claim lives `ttlMs` after its
   * owner last claimed it (each call by the owner renews it); a lapsed claim is deleted and
   * the key goes to the caller. Recording a new claim deletes the owner's lapsed claims,
   * then its least recently renewed ones past `maxPerOwner`. Used for `client:<id>` channels.
   */
  claimOwner(db: string, key: string, owner: string, policy: ClaimPolicy): Promise<string>;
  /** Deletes every claim of `db` lapsed at `now` (bounded storage); returns how many. */
  trimOwners(db: string, now: number): Promise<number>;

  // ---- commands ------------------------------------------------------------------------
  /**
   * Stores a new pending command. With an idempotency key already used for the same
   * address, returns the existing command and `created: false`.
   */
  createCommand(db: string, command: NewCommand): Promise<{ command: CommandRecord; created: boolean }>;
  getCommand(db: string, id: string): Promise<CommandRecord | null>;
  /** The command sent to `address` with this idempotency key, whatever its state, or null. */
  findCommandByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null>;
  /** Newest first. */
  listCommands(db: string, filter: CommandFilter): Promise<CommandRecord[]>;
  /** Commands of `address` not yet final. */
  countOpenCommands(db: string, address: string): Promise<number>;
  /**
   * Atomically takes up to `limit` commands of `address` for `claimer`, oldest first:
   * pending ones, and delivered/running ones whose lease ran out. They become `delivered`
   * (running ones stay `running`), `attempts` grows by one, `claimedBy`/`leaseUntil` set.
   * Two concurrent claimers never get the same command.
   */
  claimCommands(
    db: string,
    address: string,
    claimer: string,
    limit: number,
    now: number,
    leaseMs: number,
  ): Promise<CommandRecord[]>;
  /** delivered -> running, only by its claimer. Returns the updated command or null. */
  startCommand(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null>;
  /** Extends the lease of every non-final command held by `claimer`. Returns how many. */
  renewClaims(db: string, claimer: string, now: number, leaseMs: number): Promise<number>;
  /** Puts every non-final command held by `claimer` back to pending (disconnect). Returns how many. */
  releaseClaims(db: string, claimer: string): Promise<number>;
  /**
   * Records a final outcome unless the command is already final. When `claimer` is given,
   * only that claimer may record it (a client answering); null means the server (cancel,
   * expiry). Returns the command as stored after the call.
   */
  finishCommand(
    db: string,
    id: string,
    outcome: CommandOutcome,
    claimer: string | null,
    now: number,
  ): Promise<FinishResult>;
  /** Marks `expired` every non-final command whose deadline is <= now; returns them. */
  expireCommands(db: string, now: number): Promise<CommandRecord[]>;
}

/** The parts of the contract, for code that needs only one; conformance is tested part by part. */
export type StoreLog = Pick<Store, "append" | "read" | "head" | "trim" | "onAppend">;
export type StoreOwnership = Pick<Store, "claimOwner">;
export type StoreCommands = Pick<
  Store,
  | "createCommand"
  | "getCommand"
  | "findCommandByKey"
  | "listCommands"
  | "countOpenCommands"
  | "claimCommands"
  | "startCommand"
  | "renewClaims"
  | "releaseClaims"
  | "finishCommand"
  | "expireCommands"
>;
