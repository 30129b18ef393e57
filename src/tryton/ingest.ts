import postgres from "postgres";
import type { Logger } from "pino";
import type { Bus, PublishItem } from "../core/bus.js";
import { isPlainObject } from "../core/messages.js";

/**
 * Makes tidings the bus of Tryton databases: what trytond publishes in a served database is
 * appended to that database's log, in order, each message once (docs/tryton.md).
 *
 * Two sources, both read by the one instance that leads the database:
 * - `NOTIFY "bus", '{"channel":…,"message":…}'`, what trytond's own `Bus.publish` sends in
 *   the business transaction. Lost while no tidings listens, and trytond cannot send one
 *   past 8000 bytes.
 * - the table `tidings_bus` that the adapter (integrations/tryton/tidings_tryton.py) fills
 *   in the business transaction, with a `NOTIFY tidings_bus` wake-up. Durable: read in
 *   order below the transaction horizon and deleted once appended (TABLE_DRAIN below).
 *
 * Leadership: the leader holds a session-level advisory lock on its one connection to the
 * Tryton database and is the only instance that LISTENs there. PostgreSQL delivers a
 * notification only to sessions listening when it commits, and a standby takes the lock
 * (and starts listening) only after the leader's session ended, so no notification reaches
 * two instances. Table rows are deleted in the transaction that reads them: a second reader
 * blocks on the same rows and finds them gone.
 */

/** `pg_try_advisory_lock` key of the leader of a Tryton database (any bigint; "tidings" in ASCII). */
export const LEADER_LOCK_KEY = 0x74_69_64_69_6e_67_73n;
/** The adapter's table, and its wake-up channel. The adapter creates the table. */
export const TABLE = "tidings_bus";
/**
 * The adapter's table, as integrations/tryton/tidings_tryton.py creates it (the copy there
 * is the one trytond runs; test/tryton proves the two agree). `xid` is the writing
 * transaction's id, taken at insert: the reader's horizon.
 */
export const ADAPTER_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${TABLE} (
  id bigserial PRIMARY KEY,
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  channel text NOT NULL,
  message text NOT NULL)`;
/** Rows appended per store transaction. */
const DRAIN_BATCH = 500;

/**
 * Rows whose transaction id is below the snapshot's xmin belong to finished transactions:
 * no row can still appear below it, so reading in (xid, id) order below it and deleting
 * what was read skips nothing, whatever order the writers committed in (DESIGN 3, "the
 * ordered-log pitfall"). A transaction still running holds the horizon back: its later
 * rows wait for it, in order. RETURNING has no order: the caller sorts.
 */
const TABLE_DRAIN = `
  DELETE FROM ${TABLE} WHERE id IN (
    SELECT id FROM ${TABLE}
    WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY xid, id LIMIT ${DRAIN_BATCH})
  RETURNING id::text AS id, xid::text AS xid, channel, message`;

interface Row {
  readonly id: string;
  readonly xid: string;
  readonly channel: string;
  readonly message: string;
}

export interface TrytonIngestOptions {
  /** Tryton's PostgreSQL server, without a database. */
  readonly url: string;
  readonly databases: readonly string[];
  readonly pollIntervalMs: number;
}

/** One ingester per served Tryton database. */
export class TrytonIngest {
  private readonly dbs: DbIngest[];

  constructor(bus: Bus, options: TrytonIngestOptions, logger: Logger) {
    this.dbs = options.databases.map((db) => new DbIngest(bus, options, db, logger.child({ tryton: db })));
  }

  start(): void {
    for (const d of this.dbs) d.start();
  }

  /** Whether this instance leads `db` now (tests, /admin). */
  leads(db: string): boolean {
    return this.dbs.some((d) => d.db === db && d.leader);
  }

  /** Finishes the batch being appended, releases the lock (a standby takes over), closes. */
  async close(): Promise<void> {
    await Promise.all(this.dbs.map((d) => d.close()));
  }
}

class DbIngest {
  leader = false;
  private readonly sql: postgres.Sql;
  /** Notifications in arrival order (commit order), waiting to be appended. */
  private pending: PublishItem[] = [];
  private drainWanted = false;
  private pumping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly bus: Bus,
    private readonly options: TrytonIngestOptions,
    readonly db: string,
    private readonly logger: Logger,
  ) {
    // One connection does everything: the lock lives and dies with it, so a lost
    // connection ends the leadership at once (onclose), here and on the server.
    const notifications = {
      // postgres.js calls it for every NOTIFY on the connection; its types omit it.
      onnotify: (channel: string, payload: string) => this.notified(channel, payload),
    };
    this.sql = postgres(options.url, {
      ...notifications,
      database: db,
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: 5,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: "tidings-tryton-ingest" },
      onclose: () => this.lost(),
    });
  }

  start(): void {
    void this.tick();
  }

  /** Standby: try to lead. Leader: re-read the table (a wake-up lost on a reconnect costs one interval). */
  private async tick(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.leader) await this.tryLead();
      if (this.leader || this.pending.length > 0) this.wantDrain();
    } catch (e) {
      this.logger.warn({ err: e }, "Tryton database unreachable; retrying");
    }
    if (!this.closed) {
      this.timer = setTimeout(() => void this.tick(), this.options.pollIntervalMs);
      this.timer.unref();
    }
  }

  private async tryLead(): Promise<void> {
    const [row] = await this.sql<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(${LEADER_LOCK_KEY.toString()}::bigint) AS locked`;
    if (row?.locked !== true) return;
    await this.sql.unsafe(`LISTEN "bus"`);
    await this.sql.unsafe(`LISTEN "${TABLE}"`);
    this.leader = true;
    this.logger.info("leading ingestion of this Tryton database");
    // What the adapter stored while no tidings ran, first.
    this.wantDrain();
  }

  /**
   * The connection closed: the server released the lock; another instance may lead now.
   * Notifications received before stay queued: they reached no other instance.
   */
  private lost(): void {
    if (this.leader) this.logger.warn("lost the connection to this Tryton database; leadership released");
    this.leader = false;
  }

  private notified(channel: string, payload: string): void {
    if (!this.leader || this.closed) return;
    if (channel === TABLE) return this.wantDrain();
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      this.logger.error({ payload: payload.slice(0, 200) }, 'NOTIFY "bus" payload is not JSON; skipped');
      return;
    }
    if (!isPlainObject(parsed)) return;
    // The adapter also notifies trytond's own bus (for clients still on it), marked: its
    // message is in the table.
    if (parsed.tidings === "stored") return this.wantDrain();
    this.pending.push({ channel: parsed.channel as string, message: parsed.message });
    this.pump();
  }

  private wantDrain(): void {
    this.drainWanted = true;
    this.pump();
  }

  /** One worker per database: notifications and table rows are appended one batch at a time, in order. */
  private pump(): void {
    if (this.pumping !== null) return;
    this.pumping = (async () => {
      try {
        while (this.pending.length > 0 || (this.drainWanted && this.leader && !this.closed)) {
          if (this.pending.length > 0) {
            const batch = this.pending.splice(0, this.bus.options.maxBatch);
            try {
              await this.append(batch);
            } catch (e) {
              this.pending.unshift(...batch); // in order, before what came since
              throw e;
            }
          } else {
            this.drainWanted = false;
            while ((await this.drainOnce()) === DRAIN_BATCH);
          }
        }
      } catch (e) {
        // Table rows stay in the table (the transaction rolled back), notifications in the
        // queue; the next tick retries. The store's own errors are logged by the bus.
        this.logger.error({ err: e }, "Tryton ingestion failed; retrying");
      } finally {
        this.pumping = null;
      }
    })();
  }

  /** Appends one batch of the adapter's rows and deletes them in one Tryton transaction. */
  private async drainOnce(): Promise<number> {
    try {
      return await this.sql.begin(async (tx) => {
        const rows = await tx.unsafe<Row[]>(TABLE_DRAIN);
        if (rows.length === 0) return 0;
        const sorted = [...rows].sort((a, b) => compareBig(a.xid, b.xid) || compareBig(a.id, b.id));
        const items: PublishItem[] = [];
        for (const r of sorted) {
          try {
            items.push({ channel: r.channel, message: JSON.parse(r.message) as unknown });
          } catch {
            this.logger.error({ id: r.id }, `${TABLE} row is not JSON; skipped`);
          }
        }
        // Appended before the delete commits: a crash in between appends these again
        // (at least once); nothing is ever lost.
        await this.append(items);
        return rows.length;
      });
    } catch (e) {
      if (e instanceof postgres.PostgresError && e.code === "42P01") return 0; // no adapter yet
      throw e;
    }
  }

  /** Appends in order; a message tidings refuses (no "type", too large) is logged and skipped, never blocks the rest. */
  private async append(items: readonly PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    try {
      await this.bus.publishMany(this.db, items);
    } catch (e) {
      if (!isRefusal(e)) throw e;
      for (const item of items) {
        try {
          await this.bus.publishMany(this.db, [item]);
        } catch (one) {
          if (!isRefusal(one)) throw one;
          this.logger.error({ err: one, channel: item.channel }, "a Tryton message was refused by tidings; skipped");
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    // What was received is appended before the lock goes: it reached no other instance.
    if (this.pending.length > 0) this.pump();
    await this.pumping;
    this.leader = false;
    // Ending the session releases the lock and the LISTENs.
    await this.sql.end({ timeout: 5 });
  }
}

function compareBig(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A message-validation error (the message's fault), as opposed to a store failure (retry). */
function isRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "TIDINGS_ERR_MESSAGE_INVALID" || code === "TIDINGS_ERR_MESSAGE_TOO_LARGE" || code === "TIDINGS_ERR_CHANNEL_INVALID";
}
