import type {
  CommandError,
  CommandFilter,
  CommandOutcome,
  CommandRecord,
  CommandState,
  FinishResult,
  NewCommand,
} from "../store.js";
import type { Conn } from "./conn.js";

/*
 * Keys of one database (all under the `{db}` hash tag, so every script stays in one slot):
 *   cmd:<id>            hash, one command; absent fields are null
 *   cmds                zset of every command, score createdAt, member `<seq, 16 digits>:<id>`
 *                       (equal timestamps then list the later inserted first, as in memory)
 *   open:<address>      zset of the address's non-final commands, scored and named as `cmds`:
 *                       claims take the oldest first
 *   claims:<claimer>    set of ids a claimer holds (renew, release)
 *   deadlines           zset of non-final commands with a deadline
 *   idem                hash `<address>\0<idempotency key>` -> id
 * Every state change is one script, so concurrent claimers and first-outcome-wins need no locks.
 */

type Fields = Map<string, string>;

/** The `idem` hash's field for a key used at an address. */
function idempotencyField(address: string, idempotencyKey: string): string {
  return `${address}\u0000${idempotencyKey}`;
}

function fields(flat: unknown): Fields {
  const list = flat as string[];
  const f: Fields = new Map();
  for (let i = 0; i + 1 < list.length; i += 2) f.set(list[i]!, list[i + 1]!);
  return f;
}

function num(f: Fields, name: string): number | null {
  const v = f.get(name);
  return v === undefined ? null : Number(v);
}

function toRecord(db: string, f: Fields): CommandRecord {
  const error = f.get("error");
  return {
    id: f.get("id") ?? "",
    db,
    address: f.get("address") ?? "",
    method: f.get("method") ?? "",
    args: f.get("args") ?? "[]",
    state: (f.get("state") ?? "pending") as CommandState,
    result: f.get("result") ?? null,
    error: error === undefined ? null : (JSON.parse(error) as CommandError),
    idempotencyKey: f.get("idempotencyKey") ?? null,
    deadline: num(f, "deadline"),
    attempts: num(f, "attempts") ?? 0,
    claimedBy: f.get("claimedBy") ?? null,
    leaseUntil: num(f, "leaseUntil"),
    createdAt: num(f, "createdAt") ?? 0,
    deliveredAt: num(f, "deliveredAt"),
    startedAt: num(f, "startedAt"),
    finishedAt: num(f, "finishedAt"),
  };
}

export class RedisCommands {
  constructor(private readonly conn: Conn) {}

  private records(db: string, list: unknown): CommandRecord[] {
    return (list as unknown[]).map((flat) => toRecord(db, fields(flat)));
  }

  async create(db: string, c: NewCommand): Promise<{ command: CommandRecord; created: boolean }> {
    const k = (name: string) => this.conn.key(db, name);
    const idem = c.idempotencyKey === null ? "" : idempotencyField(c.address, c.idempotencyKey);
    const [created, flat] = (await this.conn.script(
      "command-create",
      [k(`cmd:${c.id}`), k("idem"), k("cmds"), k(`open:${c.address}`), k("deadlines"), k("meta")],
      [k(""), c.id, c.address, c.method, c.args, c.deadline ?? "", idem, c.idempotencyKey ?? "", c.now],
    )) as [number, unknown];
    return { command: toRecord(db, fields(flat)), created: created === 1 };
  }

  async get(db: string, id: string): Promise<CommandRecord | null> {
    const f = fields(await this.conn.command("HGETALL", [this.conn.key(db, `cmd:${id}`)]));
    return f.size === 0 ? null : toRecord(db, f);
  }

  async findByKey(db: string, address: string, idempotencyKey: string): Promise<CommandRecord | null> {
    const id = (await this.conn.command("HGET", [this.conn.key(db, "idem"), idempotencyField(address, idempotencyKey)])) as string | null;
    return id === null ? null : this.get(db, id);
  }

  async list(db: string, filter: CommandFilter): Promise<CommandRecord[]> {
    // An empty `states` list matches nothing, as in the reference.
    if (filter.limit <= 0 || filter.states?.length === 0) return [];
    const min = filter.since === undefined ? "-inf" : String(filter.since);
    const max = filter.until === undefined ? "+inf" : `(${filter.until}`;
    const list = await this.conn.script(
      "command-list",
      [this.conn.key(db, "cmds")],
      [this.conn.key(db, ""), min, max, filter.limit, filter.address ?? "", ...(filter.states ?? [])],
    );
    return this.records(db, list);
  }

  async countOpen(db: string, address: string): Promise<number> {
    return (await this.conn.command("ZCARD", [this.conn.key(db, `open:${address}`)])) as number;
  }

  async claim(db: string, address: string, claimer: string, limit: number, now: number, leaseMs: number) {
    const list = await this.conn.script(
      "command-claim",
      [this.conn.key(db, `open:${address}`)],
      [this.conn.key(db, ""), claimer, limit, now, leaseMs],
    );
    return this.records(db, list);
  }

  async start(db: string, id: string, claimer: string, now: number): Promise<CommandRecord | null> {
    const f = fields(await this.conn.script("command-start", [this.conn.key(db, `cmd:${id}`)], [claimer, now]));
    return f.size === 0 ? null : toRecord(db, f);
  }

  async renew(db: string, claimer: string, now: number, leaseMs: number): Promise<number> {
    const keys = [this.conn.key(db, `claims:${claimer}`)];
    return (await this.conn.script("command-renew", keys, [this.conn.key(db, ""), claimer, now, leaseMs])) as number;
  }

  async release(db: string, claimer: string): Promise<number> {
    const keys = [this.conn.key(db, `claims:${claimer}`)];
    return (await this.conn.script("command-release", keys, [this.conn.key(db, ""), claimer])) as number;
  }

  async finish(
    db: string,
    id: string,
    outcome: CommandOutcome,
    claimer: string | null,
    now: number,
  ): Promise<FinishResult> {
    const detail =
      outcome.state === "succeeded" ? outcome.result : outcome.state === "failed" ? JSON.stringify(outcome.error) : "";
    const reply = (await this.conn.script(
      "command-finish",
      [this.conn.key(db, `cmd:${id}`), this.conn.key(db, "deadlines")],
      [this.conn.key(db, ""), claimer === null ? "0" : "1", claimer ?? "", outcome.state, detail, now],
    )) as [number, unknown] | [];
    if (reply.length === 0) return { command: null, changed: false };
    return { command: toRecord(db, fields(reply[1])), changed: reply[0] === 1 };
  }

  async expire(db: string, now: number): Promise<CommandRecord[]> {
    const list = (await this.conn.script(
      "command-expire",
      [this.conn.key(db, "deadlines")],
      [this.conn.key(db, ""), now],
    )) as unknown[];
    // The script walks deadlines; the reference returns them in insertion order.
    const expired = list.map(fields).sort((a, b) => (num(a, "seq") ?? 0) - (num(b, "seq") ?? 0));
    return expired.map((f) => toRecord(db, f));
  }
}
