import type postgres from "postgres";
import { retryReads } from "./retry-reads.js";
import type { AppendEntry, ReadQuery, ReadResult, RetentionPolicy, StoredMessage } from "../store.js";
import { formatId, parseId, withMessageId } from "../message-id.js";
import type { SqlHandle } from "../capabilities.js";

/**
 * A log position: the writing transaction's id (xid8) and a sequence value, both as
 * decimal text so that they round-trip through SQL without loss.
 */
interface Position {
  readonly xid: string;
  readonly pos: string;
}

const MAX_INT64 = (1n << 63n) - 1n;

/** 16 hex digits each, so that string order of ids is (xid, pos) order. */
export function positionId(epoch: string, p: Position): string {
  const hex = (n: string) => BigInt(n).toString(16).padStart(16, "0");
  return formatId(epoch, hex(p.xid) + hex(p.pos));
}

/** The position of one of our ids, or null for a foreign epoch or a malformed id. */
export function parsePosition(id: string, epoch: string): Position | null {
  const parsed = parseId(id);
  if (parsed === null || parsed.epoch !== epoch || !/^[0-9a-f]{32}$/.test(parsed.position)) return null;
  const xid = BigInt(`0x${parsed.position.slice(0, 16)}`);
  const pos = BigInt(`0x${parsed.position.slice(16)}`);
  if (xid > MAX_INT64 || pos > MAX_INT64) return null;
  return { xid: xid.toString(), pos: pos.toString() };
}

function comparePositions(a: Position, b: Position): number {
  const d = BigInt(a.xid) - BigInt(b.xid) || BigInt(a.pos) - BigInt(b.pos);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

interface Row {
  xid: string;
  pos: string;
  ts: string;
}

/** What a read saw besides messages: used to re-wake readers held back by the horizon. */
export interface ReadState {
  /** Committed rows of this database wait above the horizon (an older transaction is still open). */
  readonly pending: boolean;
  /** Newest readable id at the time of the read. */
  readonly head: string | null;
}

/** One schema's log. Every statement reads the horizon from its own snapshot. */
export class PostgresLog {
  constructor(
    private readonly sql: postgres.Sql,
    private readonly schema: string,
    readonly epoch: string,
  ) {}

  /**
   * Inserts through `sql` (the caller's transaction, or a pool for a one-statement
   * transaction of its own); the rows become readable when that transaction commits.
   */
  async append(sql: SqlHandle, db: string, entries: readonly AppendEntry[], notify = true): Promise<StoredMessage[]> {
    if (entries.length === 0) return [];
    // Text columns only: immune to the caller's type parsers and column transforms.
    const fn = notify ? "append_entries" : "append_rows";
    const rows = await sql<Row[]>`
      SELECT xid, pos, ts FROM ${sql(this.schema)}.${sql(fn)}(
        ${db}, ${entries.map((e) => e.channel)}::text[], ${entries.map((e) => e.type)}::text[],
        ${entries.map((e) => e.payload)}::text[])`;
    if (rows.length !== entries.length) throw new Error(`append: ${rows.length} rows for ${entries.length} entries`);
    return rows.map((r, i) => {
      const e = entries[i]!;
      const id = positionId(this.epoch, r);
      return { id, channel: e.channel, type: e.type, ts: Number(r.ts), json: withMessageId(e.payload, id) };
    });
  }

  async read(db: string, q: ReadQuery): Promise<ReadResult & ReadState> {
    const sql = this.sql;
    const s = sql(this.schema);
    const cursor = q.after === null ? null : parsePosition(q.after, this.epoch);
    const known = cursor !== null;
    // Start before everything unless the cursor is known; SQL then checks it against retention and head.
    const c = cursor ?? { xid: "0", pos: "-1" };
    // The xid bound lets the scan start near the first young row instead of the oldest one.
    const since =
      q.after === null && q.sinceTs !== undefined
        ? sql`AND l.ts >= ${q.sinceTs}::bigint
            AND l.xid >= (SELECT min(y.xid) FROM ${s}.log y WHERE y.db = ${db} AND y.ts >= ${q.sinceTs}::bigint)`
        : sql``;
    const channels = q.channels ? sql`AND l.channel = ANY(${[...q.channels]}::text[])` : sql``;
    const cx = sql`${c.xid}::xid8`;
    const cp = sql`${c.pos}::bigint`;
    // One statement, one snapshot: the gap check, the horizon and the rows agree even
    // while another instance trims or commits. The horizon is a scalar subquery so that
    // it can bound index scans.
    const rows = await retryReads(() => sql<
      { gap: boolean; pending: boolean; head: string | null; xid: string | null; pos: string; channel: string; type: string; ts: string; payload: string }[]
    >`
      WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
      w AS MATERIALIZED (SELECT xid, pos FROM ${s}.trimmed WHERE db = ${db}),
      top AS MATERIALIZED (SELECT xid, pos FROM ${s}.log WHERE db = ${db} ORDER BY xid DESC, pos DESC LIMIT 1),
      g AS MATERIALIZED (
        SELECT ${known}::boolean AND (
          -- below what retention removed
          coalesce((SELECT (w.xid, w.pos) > (${cx}, ${cp}) FROM w), false)
          -- beyond anything ever appended
          OR NOT coalesce((SELECT (top.xid, top.pos) >= (${cx}, ${cp}) FROM top), false)
            AND NOT coalesce((SELECT (w.xid, w.pos) >= (${cx}, ${cp}) FROM w), false)
        ) AS gap
      ),
      start AS MATERIALIZED (
        SELECT gap,
          CASE WHEN gap THEN '0'::xid8 ELSE ${cx} END AS xid,
          CASE WHEN gap THEN -1 ELSE ${cp} END AS pos
        FROM g
      )
      SELECT start.gap,
        -- Rows wait above the horizon exactly when the newest one does.
        coalesce((SELECT top.xid >= h.xmin FROM top, h), false) AS pending,
        (SELECT l.xid::text || ' ' || l.pos FROM ${s}.log l WHERE l.db = ${db} AND l.xid < (SELECT xmin FROM h)
          ORDER BY l.xid DESC, l.pos DESC LIMIT 1) AS head,
        m.xid::text AS xid, m.pos::text AS pos, m.channel, m.type, m.ts::text AS ts, m.payload
      FROM start LEFT JOIN LATERAL (
        SELECT l.xid, l.pos, l.channel, l.type, l.ts, l.payload FROM ${s}.log l
        WHERE l.db = ${db} AND (l.xid, l.pos) > (start.xid, start.pos) AND l.xid < (SELECT xmin FROM h) ${since} ${channels}
        ORDER BY l.xid, l.pos LIMIT ${q.limit}
      ) m ON true
      ORDER BY m.xid, m.pos`.execute());
    const first = rows[0]!;
    const messages: StoredMessage[] = [];
    for (const r of rows) {
      if (r.xid === null) continue;
      const id = positionId(this.epoch, { xid: r.xid, pos: r.pos });
      messages.push({ id, channel: r.channel, type: r.type, ts: Number(r.ts), json: withMessageId(r.payload, id) });
    }
    return { messages, gap: q.after !== null && (!known || first.gap), pending: first.pending, head: this.headId(first.head) };
  }

  /** Newest readable id of each database, and whether rows wait above the horizon there. */
  async heads(dbs: readonly string[]): Promise<Map<string, ReadState>> {
    const s = this.sql(this.schema);
    const rows = await retryReads(() => this.sql<{ db: string; head: string | null; pending: boolean }[]>`
      WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
      SELECT d.db,
        (SELECT l.xid::text || ' ' || l.pos FROM ${s}.log l WHERE l.db = d.db AND l.xid < (SELECT xmin FROM h)
          ORDER BY l.xid DESC, l.pos DESC LIMIT 1) AS head,
        coalesce((SELECT l.xid >= (SELECT xmin FROM h) FROM ${s}.log l WHERE l.db = d.db
          ORDER BY l.xid DESC, l.pos DESC LIMIT 1), false) AS pending
      FROM unnest(${[...dbs]}::text[]) AS d(db)`.execute());
    return new Map(rows.map((r) => [r.db, { head: this.headId(r.head), pending: r.pending }]));
  }

  async head(db: string): Promise<string | null> {
    return (await this.heads([db])).get(db)?.head ?? null;
  }

  /**
   * Removes a prefix of the readable log (never a row above the horizon, which could
   * still be joined by an older transaction) and raises the watermark. One instance at a
   * time per database: a concurrent call returns 0 at once.
   */
  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    if (policy.maxCount <= 0 && policy.maxAgeMs <= 0) return 0;
    const s = this.sql(this.schema);
    return this.sql.begin(async (tx) => {
      const [lock] = await tx<{ ok: boolean }[]>`
        SELECT pg_try_advisory_xact_lock(hashtextextended(${`tidings.trim:${this.schema}:${db}`}, 0)) AS ok`;
      if (!lock!.ok) return 0;
      // One horizon for the whole run: rows below it are final, whatever commits meanwhile.
      const [h] = await tx<{ xmin: string }[]>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`;
      const xmin = h!.xmin;
      let bound: Position | undefined;
      if (policy.maxCount > 0) {
        [bound] = await tx<Position[]>`
          SELECT xid::text, pos::text FROM ${s}.log WHERE db = ${db} AND xid < ${xmin}::xid8
          ORDER BY xid DESC, pos DESC OFFSET ${policy.maxCount} LIMIT 1`;
      }
      if (policy.maxAgeMs > 0) {
        // Everything before the first row young enough to keep.
        const [keep] = await tx<Position[]>`
          SELECT xid::text, pos::text FROM ${s}.log WHERE db = ${db} AND xid < ${xmin}::xid8 AND ts >= ${now - policy.maxAgeMs}::bigint
          ORDER BY xid, pos LIMIT 1`;
        const end = keep ?? { xid: xmin, pos: "-1" };
        const [old] = await tx<Position[]>`
          SELECT xid::text, pos::text FROM ${s}.log
          WHERE db = ${db} AND xid < ${xmin}::xid8 AND (xid, pos) < (${end.xid}::xid8, ${end.pos}::bigint)
          ORDER BY xid DESC, pos DESC LIMIT 1`;
        if (old && (!bound || comparePositions(old, bound) > 0)) bound = old;
      }
      if (!bound) return 0;
      const deleted = await tx`
        DELETE FROM ${s}.log WHERE db = ${db} AND (xid, pos) <= (${bound.xid}::xid8, ${bound.pos}::bigint)`;
      await tx`
        INSERT INTO ${s}.trimmed AS t (db, xid, pos) VALUES (${db}, ${bound.xid}::xid8, ${bound.pos}::bigint)
        ON CONFLICT (db) DO UPDATE SET xid = excluded.xid, pos = excluded.pos
        WHERE (t.xid, t.pos) < (excluded.xid, excluded.pos)`;
      return deleted.count;
    });
  }

  /**
   * Milliseconds since the oldest transaction still holding a transaction id began: how
   * long the horizon may have been held back (0 when there is none, or none this role can
   * see — other roles' sessions need pg_read_all_stats).
   */
  async horizonLag(): Promise<number> {
    const [row] = await this.sql<{ ms: string | null }[]>`
      SELECT (extract(epoch FROM clock_timestamp() - min(t)) * 1000)::text AS ms FROM (
        SELECT xact_start AS t FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
        UNION ALL SELECT prepared FROM pg_prepared_xacts
      ) AS holders`;
    return row?.ms == null ? 0 : Math.max(0, Math.round(Number(row.ms)));
  }

  private headId(head: string | null): string | null {
    if (head === null) return null;
    const [xid, pos] = head.split(" ") as [string, string];
    return positionId(this.epoch, { xid, pos });
  }
}
