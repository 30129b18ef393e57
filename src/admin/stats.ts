import type { TidingsBus } from "../bus.js";
import type { DbLog } from "../core/db-log.js";
import type { RateMeter } from "../core/rates.js";
import type { CommandRecord, CommandState } from "../stores/store.js";

/** Channels listed per database, those with the most listeners first. */
export const TOP_CHANNELS = 50;
/** Newest commands listed per database. */
export const RECENT_COMMANDS = 50;
/** Open commands counted per database at most: the count says so when it stops there. */
export const OPEN_COMMANDS_CAP = 1000;
/** Seconds of per-second message counts sent for the sparkline. */
export const SERIES_SECONDS = 60;
/** Transports whose connection counts are always listed, at 0 when none is open. */
const TRANSPORTS = ["http", "websocket", "sse"] as const;
const OPEN_STATES: readonly CommandState[] = ["pending", "delivered", "running"];

/** Messages published: counts over the last minute and five minutes, and per second. */
export interface RateView {
  readonly last_1m: number;
  readonly last_5m: number;
  /** The last 60 seconds, oldest first; the last one is the current, partly elapsed second. */
  readonly per_second: number[];
}

export interface CommandSummary {
  readonly id: string;
  readonly address: string;
  readonly method: string;
  readonly state: CommandState;
  readonly attempts: number;
  readonly created_at: string;
  readonly finished_at: string | null;
}

export interface DatabaseStats {
  readonly name: string;
  /** The newest message id this process has read, or null for an empty log. */
  readonly head: string | null;
  /** Messages held in memory to answer readers without a store read. */
  readonly tail_messages: number;
  /** Parked polls and live streams (a listener on several channels counts once). */
  readonly listeners: number;
  /** How many channels have listeners; `channels` lists the top 50 of them. */
  readonly channel_count: number;
  readonly channels: Array<{ channel: string; listeners: number }>;
  readonly messages: RateView;
  readonly commands: {
    /** Commands without an outcome, by state, counted up to 1000 in all (`open_capped` then). */
    readonly open: Record<"pending" | "delivered" | "running", number>;
    readonly open_capped: boolean;
    /** The newest 50, newest first. */
    readonly recent: CommandSummary[];
  };
}

/** The answer of `GET /admin/api/stats`. */
export interface AdminStats {
  readonly server: {
    readonly engine: string;
    readonly uptime_seconds: number;
    readonly rss_bytes: number;
    readonly time: string;
  };
  /** Open client connections of this process by transport. */
  readonly connections: Record<string, number>;
  readonly parked_polls: number;
  /** Over the databases listed. */
  readonly messages: RateView;
  readonly databases: DatabaseStats[];
}

/** Everything the admin page shows, computed now from in-memory state and two store reads per database. */
export async function collectStats(
  bus: TidingsBus,
  rates: RateMeter,
  logs: ReadonlyArray<DbLog>,
  startedAt: number,
  now = Date.now(),
): Promise<AdminStats> {
  const databases = await Promise.all(
    [...logs].sort((a, b) => (a.db < b.db ? -1 : a.db > b.db ? 1 : 0)).map((log) => databaseStats(bus, rates, log, now)),
  );
  const connections: Record<string, number> = {};
  for (const t of TRANSPORTS) connections[t] = 0;
  for (const v of (await bus.metrics.connections.get()).values) {
    const t = v.labels.transport;
    if (typeof t === "string") connections[t] = v.value;
  }
  const parked = (await bus.metrics.parkedPolls.get()).values[0]?.value ?? 0;
  return {
    server: {
      engine: bus.store.engine,
      uptime_seconds: Math.floor((now - startedAt) / 1000),
      rss_bytes: process.memoryUsage.rss(),
      time: new Date(now).toISOString(),
    },
    connections,
    parked_polls: parked,
    messages: sumRates(databases.map((d) => d.messages)),
    databases,
  };
}

async function databaseStats(bus: TidingsBus, rates: RateMeter, log: DbLog, now: number): Promise<DatabaseStats> {
  await log.ready;
  const [open, recent] = await Promise.all([
    bus.commands.list(log.db, { states: OPEN_STATES, limit: OPEN_COMMANDS_CAP }),
    bus.commands.list(log.db, { limit: RECENT_COMMANDS }),
  ]);
  const byState = { pending: 0, delivered: 0, running: 0 };
  for (const c of open) if (c.state === "pending" || c.state === "delivered" || c.state === "running") byState[c.state]++;
  const { top, total } = topChannels(log.channelListeners(), TOP_CHANNELS);
  const perSecond = rates.series(log.db, rates.windowSeconds, now);
  return {
    name: log.db,
    head: log.head,
    tail_messages: log.tailLength,
    listeners: log.listenerCount,
    channel_count: total,
    channels: top.map(([channel, listeners]) => ({ channel, listeners })),
    messages: rateView(perSecond),
    commands: { open: byState, open_capped: open.length >= OPEN_COMMANDS_CAP, recent: recent.map(summary) },
  };
}

/** From per-second counts of the meter's whole window (oldest first). */
function rateView(perSecond: readonly number[]): RateView {
  const sum = (from: number): number => perSecond.slice(Math.max(0, perSecond.length - from)).reduce((a, b) => a + b, 0);
  return { last_1m: sum(60), last_5m: sum(300), per_second: perSecond.slice(-SERIES_SECONDS) };
}

function sumRates(views: readonly RateView[]): RateView {
  const per_second = new Array<number>(SERIES_SECONDS).fill(0);
  let last_1m = 0;
  let last_5m = 0;
  for (const v of views) {
    last_1m += v.last_1m;
    last_5m += v.last_5m;
    v.per_second.forEach((n, i) => (per_second[i]! += n));
  }
  return { last_1m, last_5m, per_second };
}

/**
 * The `k` channels with the most listeners (ties by name), without sorting them all: most
 * channels (one per client) have a single listener and fail the first comparison.
 */
export function topChannels(
  entries: Iterable<[string, number]>,
  k: number,
): { top: Array<[string, number]>; total: number } {
  const top: Array<[string, number]> = [];
  let total = 0;
  const before = (a: [string, number], b: [string, number]): boolean => a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]);
  for (const e of entries) {
    total++;
    if (top.length === k && !before(e, top[k - 1]!)) continue;
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(top[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, [e[0], e[1]]);
    if (top.length > k) top.pop();
  }
  return { top, total };
}

function summary(c: CommandRecord): CommandSummary {
  return {
    id: c.id,
    address: c.address,
    method: c.method,
    state: c.state,
    attempts: c.attempts,
    created_at: new Date(c.createdAt).toISOString(),
    finished_at: c.finishedAt === null ? null : new Date(c.finishedAt).toISOString(),
  };
}
