import type { AppendEntry, ReadQuery, ReadResult, RetentionPolicy, StoredMessage } from "../store.js";
import { formatId, parseId, withMessageId } from "../message-id.js";
import type { Conn } from "./conn.js";

/*
 * One Redis stream per database. The stream id `<ms>-<seq>` is the log position; the
 * message id is `<epoch>:<ms, 15 digits>-<seq, 6 digits>` so that string order is stream
 * order (append-3.lua keeps seq within 6 digits). Entries hold the channel, the type and
 * the payload *without* message_id (c, t, p): the id is only known inside the script, so
 * it is spliced in with `withMessageId` when the entry is read. The entry's timestamp is
 * the millisecond part of its id, which is also what `sinceTs` reads range over.
 */

const MS_WIDTH = 15;
const SEQ_WIDTH = 6;
const POSITION = /^(\d{15})-(\d{6})$/;

export function position(streamId: string): string {
  const [ms = "", seq = ""] = streamId.split("-");
  return `${ms.padStart(MS_WIDTH, "0")}-${seq.padStart(SEQ_WIDTH, "0")}`;
}

/** The stream id a cursor of this epoch points at, or null when it is not one of ours. */
export function streamIdOf(cursor: string, epoch: string): string | null {
  const parsed = parseId(cursor);
  if (parsed === null || parsed.epoch !== epoch) return null;
  const m = POSITION.exec(parsed.position);
  return m ? `${Number(m[1])}-${Number(m[2])}` : null;
}

function toMessage(epoch: string, streamId: string, channel: string, type: string, payload: string): StoredMessage {
  const id = formatId(epoch, position(streamId));
  return { id, channel, type, ts: Number(streamId.split("-")[0]), json: withMessageId(payload, id) };
}

/** An XRANGE entry `[id, [field, value, ...]]` as a message. */
function decodeEntry(epoch: string, raw: unknown): StoredMessage {
  const [streamId, flat] = raw as [string, string[]];
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i]!, flat[i + 1]!);
  return toMessage(epoch, streamId, f.get("c") ?? "", f.get("t") ?? "", f.get("p") ?? "{}");
}

export class RedisLog {
  constructor(private readonly conn: Conn) {}

  private keys(db: string): string[] {
    return [this.conn.key(db, "log"), this.conn.key(db, "meta")];
  }

  async append(db: string, entries: readonly AppendEntry[]): Promise<StoredMessage[]> {
    if (entries.length === 0) return [];
    const args = [db, ...entries.flatMap((e) => [e.channel, e.type, e.payload])];
    const ids = (await this.conn.script("append", [...this.keys(db), this.conn.key(null, "dbs")], args)) as string[];
    const epoch = await this.conn.epoch();
    return ids.map((sid, i) => {
      const e = entries[i]!;
      return toMessage(epoch, sid, e.channel, e.type, e.payload);
    });
  }

  async read(db: string, q: ReadQuery): Promise<ReadResult> {
    for (;;) {
      const epoch = await this.conn.epoch();
      const result = await this.readAs(epoch, db, q);
      // A reconnect to a Redis that came back empty swaps the epoch while the read waits in
      // the offline queue: its entries then belong to the new epoch and the cursor to none.
      // Labelled with the old one they would pass for the cursor's successors, without a gap.
      if ((await this.conn.epoch()) === epoch) return result;
    }
  }

  private async readAs(epoch: string, db: string, q: ReadQuery): Promise<ReadResult> {
    let gap = false;
    let mode: "after" | "from" = "from";
    let start = "-";
    if (q.after !== null) {
      const sid = streamIdOf(q.after, epoch);
      if (sid === null) gap = true;
      else [mode, start] = ["after", sid];
    } else if (q.sinceTs !== undefined && q.sinceTs > 0) {
      start = `${Math.ceil(q.sinceTs)}-0`;
    }

    // With a channel filter, page through the stream; each page re-checks its cursor, so
    // a trim that overtakes the scan is reported as a gap rather than skipped silently.
    const channels = q.channels ? new Set(q.channels) : null;
    const pageSize = channels ? Math.min(1000, Math.max(q.limit, 100)) : Math.max(q.limit, 1);
    const messages: StoredMessage[] = [];
    for (;;) {
      const [pageGap, entries] = (await this.conn.script("read", this.keys(db), [mode, start, pageSize])) as [
        number,
        unknown[],
      ];
      if (pageGap === 1) {
        gap = true;
        messages.length = 0; // the page restarts at the oldest entry
      }
      for (const raw of entries) {
        if (messages.length >= q.limit) break;
        const m = decodeEntry(epoch, raw);
        if (channels === null || channels.has(m.channel)) messages.push(m);
      }
      if (messages.length >= q.limit || entries.length < pageSize) break;
      [mode, start] = ["after", (entries[entries.length - 1] as [string])[0]];
    }
    return { messages, gap };
  }

  async head(db: string): Promise<string | null> {
    const [top] = (await this.conn.command("XREVRANGE", [this.conn.key(db, "log"), "+", "-", "COUNT", 1])) as [
      string,
    ][];
    return top ? formatId(await this.conn.epoch(), position(top[0])) : null;
  }

  async trim(db: string, policy: RetentionPolicy, now: number): Promise<number> {
    const cutoff = policy.maxAgeMs > 0 ? Math.max(0, Math.ceil(now - policy.maxAgeMs)) : 0;
    return (await this.conn.script("trim", this.keys(db), [Math.max(0, policy.maxCount), cutoff])) as number;
  }
}
