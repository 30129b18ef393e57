import type Database from "better-sqlite3";
import type { AppendEntry, AppendResult, ReadQuery, ReadResult, RetentionPolicy, StoredMessage } from "../store.js";
import { formatId, parseSeqId, seqPosition, withMessageId } from "../message-id.js";

interface MessageRow {
  readonly seq: number;
  readonly channel: string;
  readonly type: string;
  readonly ts: number;
  readonly json: string;
}

interface LogState {
  readonly trimmed_through: number;
  readonly last_seq: number;
}

const COLUMNS = "seq, channel, type, ts, json";

/**
 * The logs of every database in one `messages` table. One seq counter is shared by all
 * databases: a database's ids have holes, which is fine, since ids only need to sort.
 * Several processes may append to one file: each append takes the seq after the highest
 * ever used inside a write transaction (BEGIN IMMEDIATE holds the file's single write lock
 * to commit), so seqs are unique and every reader's snapshot holding seq n holds all below.
 */
export class SqliteLog {
  private readonly lastSeq;
  private readonly insert;
  private readonly setLastSeq;
  private readonly state;
  private readonly readAll;
  private readonly readChannel;
  private readonly firstAtOrAfterTs;
  private readonly newest;
  private readonly newestBeyondCount;
  private readonly newestOlderThan;
  private readonly deleteThrough;
  private readonly setTrimmedThrough;
  private readonly appendBatch;
  private readonly lastSeqOf;
  private readonly trimBatch;

  constructor(
    sql: Database.Database,
    private readonly epoch: string,
  ) {
    // AUTOINCREMENT keeps the highest seq ever used here, deleted rows included.
    this.lastSeq = sql.prepare<[], number>("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").pluck();
    this.insert = sql.prepare<[number, string, string, string, number, string]>(
      "INSERT INTO messages (seq, db, channel, type, ts, json) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.setLastSeq = sql.prepare<[string, number]>(
      "INSERT INTO logs (db, last_seq) VALUES (?, ?) ON CONFLICT (db) DO UPDATE SET last_seq = excluded.last_seq",
    );
    this.state = sql.prepare<[string], LogState>("SELECT trimmed_through, last_seq FROM logs WHERE db = ?");
    this.readAll = sql.prepare<[string, number, number], MessageRow>(
      `SELECT ${COLUMNS} FROM messages WHERE db = ? AND seq > ? ORDER BY seq LIMIT ?`,
    );
    this.readChannel = sql.prepare<[string, string, number, number], MessageRow>(
      `SELECT ${COLUMNS} FROM messages WHERE db = ? AND channel = ? AND seq > ? ORDER BY seq LIMIT ?`,
    );
    this.firstAtOrAfterTs = sql
      .prepare<[string, number], number>("SELECT seq FROM messages WHERE db = ? AND ts >= ? ORDER BY ts, seq LIMIT 1")
      .pluck();
    this.newest = sql
      .prepare<[string], number>("SELECT seq FROM messages WHERE db = ? ORDER BY seq DESC LIMIT 1")
      .pluck();
    // Walks at most maxCount + 1 index entries instead of counting the whole log.
    this.newestBeyondCount = sql
      .prepare<[string, number], number>("SELECT seq FROM messages WHERE db = ? ORDER BY seq DESC LIMIT 1 OFFSET ?")
      .pluck();
    this.newestOlderThan = sql
      .prepare<[string, number], number | null>("SELECT max(seq) FROM messages WHERE db = ? AND ts < ?")
      .pluck();
    this.deleteThrough = sql.prepare<[string, number]>("DELETE FROM messages WHERE db = ? AND seq <= ?");
    this.setTrimmedThrough = sql.prepare<[string, number]>(
      `INSERT INTO logs (db, trimmed_through) VALUES (?, ?)
       ON CONFLICT (db) DO UPDATE SET trimmed_through = excluded.trimmed_through`,
    );

    this.lastSeqOf = sql.prepare<[string], number>("SELECT last_seq FROM logs WHERE db = ?").pluck();

    this.appendBatch = sql.transaction((db: string, batch: readonly AppendEntry[], now: number): AppendResult => {
      let seq = this.lastSeq.get() ?? 0;
      const before = this.lastSeqOf.get(db);
      const previous = before === undefined || before === 0 ? null : formatId(this.epoch, seqPosition(before));
      const out: StoredMessage[] & { previous?: string | null } = [];
      out.previous = previous;
      for (const e of batch) {
        seq += 1;
        const id = formatId(this.epoch, seqPosition(seq));
        const json = withMessageId(e.payload, id);
        this.insert.run(seq, db, e.channel, e.type, now, json);
        out.push({ id, channel: e.channel, type: e.type, ts: now, json });
      }
      this.setLastSeq.run(db, seq);
      return out;
    });

    this.trimBatch = sql.transaction((db: string, through: number): number => {
      const removed = this.deleteThrough.run(db, through).changes;
      if (removed > 0) this.setTrimmedThrough.run(db, through);
      return removed;
    });
  }

  append(db: string, batch: readonly AppendEntry[], now: number): AppendResult {
    if (batch.length === 0) return [];
    return this.appendBatch.immediate(db, batch, now);
  }

  read(db: string, q: ReadQuery): ReadResult {
    let after = 0;
    let gap = false;
    if (q.after === null) {
      if (q.sinceTs !== undefined) {
        const first = this.firstAtOrAfterTs.get(db, q.sinceTs);
        if (first === undefined) return { messages: [], gap: false };
        after = first - 1;
      }
    } else {
      const seq = parseSeqId(q.after, this.epoch);
      const state = this.state.get(db) ?? { trimmed_through: 0, last_seq: 0 };
      // Same rule as the memory engine: the last trimmed seq is still a valid cursor.
      if (seq === null || seq < state.trimmed_through || seq > state.last_seq) gap = true;
      else after = seq;
    }
    const rows = q.channels ? this.readChannels(db, q.channels, after, q.limit) : this.readAll.all(db, after, q.limit);
    return { messages: rows.map((r) => this.toMessage(r)), gap };
  }

  /**
   * One (db, channel, seq) index range of at most `limit` rows per channel, merged: the
   * cost stays bounded however sparse the channels are in a busy log.
   */
  private readChannels(db: string, channels: readonly string[], after: number, limit: number): MessageRow[] {
    const lists = [...new Set(channels)].map((c) => this.readChannel.all(db, c, after, limit));
    if (lists.length === 1) return lists[0]!;
    return lists
      .flat()
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit);
  }

  head(db: string): string | null {
    const seq = this.newest.get(db);
    return seq === undefined ? null : formatId(this.epoch, seqPosition(seq));
  }

  /** Removes a prefix of the log (by count, then by age), as the memory engine does. */
  trim(db: string, policy: RetentionPolicy, now: number): number {
    let through = 0;
    if (policy.maxCount > 0) through = this.newestBeyondCount.get(db, policy.maxCount) ?? 0;
    if (policy.maxAgeMs > 0) through = Math.max(through, this.newestOlderThan.get(db, now - policy.maxAgeMs) ?? 0);
    return through === 0 ? 0 : this.trimBatch.immediate(db, through);
  }

  private toMessage(r: MessageRow): StoredMessage {
    return { id: formatId(this.epoch, seqPosition(r.seq)), channel: r.channel, type: r.type, ts: r.ts, json: r.json };
  }
}
