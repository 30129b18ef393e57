import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Store, StoredMessage } from "../stores/store.js";
import { hasHorizonProbe } from "../stores/capabilities.js";
import type { DatabaseOptions, TidingsOptions } from "../options.js";
import { TidingsError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { AccessControl } from "./access.js";
import { isValidDbName } from "./channels.js";
import { DbLog } from "./db-log.js";
import { AppendCombiner } from "./append-combiner.js";
import type { Delivery } from "./listener.js";
import { toAppendEntry, type PublishItem } from "./messages.js";
import { buildNotification, type Notification } from "./notify.js";
import { poll, startPoll, type PollRequest, type PollSink } from "./poll.js";
import { Stream, type StreamHandlers } from "./stream.js";
import { HandlerRegistry, type Handler } from "./handlers.js";
import { ChangeService } from "./changes.js";

/** What the core runs on; `createBus` (src/bus.ts) and `createServer` build these. */
export interface BusParts {
  readonly options: TidingsOptions;
  /** Opened already. */
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface BusEvents {
  "message:published": [db: string, messages: readonly StoredMessage[]];
  "retention:trimmed": [db: string, removed: number];
  "store:error": [error: unknown];
}

export type { PublishItem } from "./messages.js";

/**
 * The core: databases, the ordered log with its hot tail per database, access rules,
 * publish/notify, polls and streams. Transports sit on top of it and do nothing else
 * but translate wire formats. Commands are built on it (src/bus.ts), not inside it.
 */
export class Bus extends EventEmitter<BusEvents> {
  readonly access: AccessControl;
  /** Application handlers of WebSocket requests, by rohrpost `type`. */
  readonly handlers = new HandlerRegistry();
  /** Model-change broadcasts (DESIGN §7): created, updated, deleted records to their groups. */
  readonly changes: ChangeService;
  private readonly logs = new Map<string, DbLog>();
  /** Loaded databases that `*` admitted (not named in the options): at most maxDatabases. */
  private readonly onDemand = new Set<string>();
  private readonly combiners = new Map<string, AppendCombiner>();
  private readonly offAppend: () => void;
  private retentionTimer: NodeJS.Timeout | undefined;
  private closed = false;

  readonly options: TidingsOptions;
  readonly store: Store;
  readonly logger: Logger;
  readonly metrics: Metrics;

  constructor({ options, store, logger, metrics }: BusParts) {
    super();
    this.options = options;
    this.store = store;
    this.logger = logger;
    this.metrics = metrics;
    this.access = new AccessControl(store, options.accessRules, {
      ttlMs: options.clientClaimTtlMs,
      maxPerUser: options.maxClientClaimsPerUser,
    });
    this.changes = new ChangeService(this);
    // A wake-up is only a hint: the log re-reads the store after its head. A single-process
    // store needs none: this process made every append and hands it to the log directly.
    // An SQLite file may have other processes appending too: their appends come as hints.
    this.offAppend = store.capabilities.shared || store.capabilities.otherProcesses === true
      ? store.onAppend((db) => {
          const log = this.logs.get(db);
          if (log !== undefined) void log.refresh().catch((e: unknown) => this.storeError(e));
        })
      : () => {};
    if (hasHorizonProbe(store)) metrics.watchHorizonLag(() => store.horizonLag());
    this.retentionTimer = setInterval(() => void this.runRetention(), options.retentionIntervalMs);
    this.retentionTimer.unref();
  }

  // ---- databases ---------------------------------------------------------------------------

  /** The databases this process serves now (a log loaded), by name; read-only, for the admin page. */
  loadedLogs(): ReadonlyMap<string, DbLog> {
    return this.logs;
  }

  /** The options of a served database; throws unknown-database or bus-disabled errors. */
  databaseOptions(db: string): DatabaseOptions {
    const configured = this.options.databases[db];
    const opts = configured ?? (isValidDbName(db) ? this.options.databases["*"] : undefined);
    if (opts === undefined) {
      throw new TidingsError("TIDINGS_ERR_DB_UNKNOWN", `Unknown database ${JSON.stringify(db.slice(0, 64))}.`);
    }
    return opts;
  }

  /**
   * Throws what `log(db)` would for an unknown or bus-disabled database, without loading
   * anything: transports call it before authenticating, and load the log only after.
   */
  assertServes(db: string): void {
    if (this.logs.has(db)) return;
    if (!this.databaseOptions(db).bus) {
      throw new TidingsError("TIDINGS_ERR_DB_BUS_DISABLED", `The bus is disabled for database ${db}.`);
    }
  }

  /** The log of a database with the bus enabled, loaded on first use. */
  log(db: string): DbLog {
    let log = this.logs.get(db);
    if (log !== undefined) return log;
    this.assertServes(db);
    if (this.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
    const admitted = this.options.databases[db] === undefined;
    if (admitted && this.onDemand.size >= this.options.maxDatabases) {
      throw new TidingsError(
        "TIDINGS_ERR_DB_TOO_MANY",
        `This server already serves ${this.onDemand.size} databases created on demand (maxDatabases); ${JSON.stringify(db)} is not one of them.`,
      );
    }
    log = new DbLog(db, this.store, {
      tailSize: this.options.tailSize,
      tailMaxBytes: this.options.tailMaxBytes,
      noCursorWindowMs: this.options.noCursorWindowMs,
      onStoreRead: (ms) => this.metrics.storeLatency.observe({ op: "read" }, ms / 1000),
      onError: (e) => this.storeError(e),
    });
    log.ready.catch((e: unknown) => {
      // Forget a log that could not load, so the next request tries again.
      if (this.logs.get(db) === log) {
        this.logs.delete(db);
        this.onDemand.delete(db);
      }
      this.storeError(e);
    });
    this.logs.set(db, log);
    if (admitted) this.onDemand.add(db);
    return log;
  }

  // ---- publishing --------------------------------------------------------------------------

  /** Appends one message; returns its message_id. */
  async publish(db: string, channel: string, message: unknown): Promise<string> {
    const [id] = await this.publishMany(db, [{ channel, message }]);
    return id!;
  }

  /** Appends several messages atomically and in order; returns their message_ids. */
  async publishMany(db: string, items: readonly PublishItem[]): Promise<string[]> {
    if (items.length === 0) return [];
    if (items.length > this.options.maxBatch) {
      throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `At most ${this.options.maxBatch} messages per publish.`);
    }
    const log = this.log(db);
    const entries = items.map((i) => toAppendEntry(i.channel, i.message, this.options.maxMessageBytes));
    const stored = await this.combiner(db, log).append(entries);
    return stored.map((m) => m.id);
  }

  /** The group-commit queue of a database; every append of this process goes through it. */
  private combiner(db: string, log: DbLog): AppendCombiner {
    let c = this.combiners.get(db);
    if (c === undefined) {
      const published = this.metrics.publishedIn(db);
      c = new AppendCombiner(this.store, db, this.options.maxBatch, (stored, ms) => {
        this.metrics.storeLatency.observe({ op: "append" }, ms / 1000);
        published.count += stored.length;
        // The log of this database as it is now (a log that failed to load is replaced).
        const current = this.logs.get(db) ?? log;
        if (this.store.capabilities.shared) void current.refresh().catch((e: unknown) => this.storeError(e));
        else current.ingestLocal(stored);
        this.emit("message:published", db, stored);
      });
      this.combiners.set(db, c);
    }
    return c;
  }

  /** Tryton's notify(): a notification popup for a user, or for one client of theirs. */
  async notify(db: string, notification: Notification): Promise<string> {
    const { channel, message } = buildNotification(notification);
    return this.publish(db, channel, message);
  }

  /** Registers an application handler for WebSocket requests of this `type`. */
  handle(type: string, handler: Handler): void {
    this.handlers.register(type, handler);
  }

  // ---- reading -----------------------------------------------------------------------------

  async poll(db: string, req: PollRequest): Promise<Delivery> {
    return poll(this.log(db), req);
  }

  /** `poll` to a sink: `sink.done` runs before this returns when the tail holds the answer. */
  startPoll(db: string, req: PollRequest, sink: PollSink): void {
    startPoll(this.log(db), req, sink);
  }

  stream(db: string, channels: Iterable<string>, after: string | null, handlers: StreamHandlers): Stream {
    return new Stream(this.log(db), new Set(channels), after, handlers);
  }

  // ---- housekeeping ------------------------------------------------------------------------

  /** Applies each served database's retention once; runs on a timer, callable by tests. */
  async runRetention(now = Date.now()): Promise<void> {
    for (const db of this.logs.keys()) {
      const { retention } = this.databaseOptions(db);
      try {
        const removed = await this.store.trim(db, { maxAgeMs: retention.maxAgeHours * 3_600_000, maxCount: retention.maxCount }, now);
        if (removed > 0) this.emit("retention:trimmed", db, removed);
        // Another instance may have trimmed (shared stores trim in one place): either way the
        // tail must not serve what the store no longer has, or instances would disagree on gaps.
        const oldest = await this.store.read(db, { after: null, limit: 1 });
        this.logs.get(db)?.forgetBefore(oldest.messages[0]?.id ?? null);
      } catch (e) {
        this.storeError(e);
      }
    }
    await this.trimClaims(now);
  }

  /**
   * Deletes lapsed `client:<id>` claims (the store's disk stays bounded, not only their use)
   * of every served database: those loaded, and those named in the options.
   */
  private async trimClaims(now: number): Promise<void> {
    const named = Object.keys(this.options.databases).filter((db) => db !== "*");
    for (const db of new Set([...this.logs.keys(), ...named])) {
      try {
        await this.store.trimOwners(db, now);
      } catch (e) {
        this.storeError(e);
      }
    }
  }

  private storeError(e: unknown): void {
    this.logger.error({ err: e }, "store operation failed");
    if (this.listenerCount("store:error") > 0) this.emit("store:error", e);
  }

  /** Stops timers, forgets listeners and closes the store; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.retentionTimer);
    this.offAppend();
    for (const log of this.logs.values()) log.close();
    this.logs.clear();
    this.onDemand.clear();
    this.combiners.clear();
    await this.store.close();
  }
}
