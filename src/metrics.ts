import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Counts by one label value kept as plain numbers on the hot path and added to a labelled
 * counter when scraped: a labelled prom-client increment per answer showed up in profiles.
 */
class Tallies<L extends string> {
  private readonly byValue = new Map<string, { count: number }>();

  constructor(private readonly label: L) {}

  /** The tally of one label value, to keep and add to (`tally.count += n`). */
  of(value: string): { count: number } {
    let tally = this.byValue.get(value);
    if (tally === undefined) {
      tally = { count: 0 };
      this.byValue.set(value, tally);
    }
    return tally;
  }

  flushInto(counter: Counter<L>): void {
    for (const [value, tally] of this.byValue) {
      if (tally.count === 0) continue;
      counter.inc({ [this.label]: value } as Record<L, string>, tally.count);
      tally.count = 0;
    }
  }
}

/** Every metric tidings exports, on a registry of its own (several servers may share a process). */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: "tidings_connections",
    help: "Open client connections by transport.",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });
  /** Long-polls parked now: a plain number on the hot path, read by the gauge when scraped. */
  parked = 0;
  readonly parkedPolls: Gauge = new Gauge({
    name: "tidings_parked_polls",
    help: "Long-polls waiting for a message.",
    registers: [this.registry],
    collect: (): void => this.parkedPolls.set(this.parked),
  });
  readonly published: Counter<"db"> = new Counter({
    name: "tidings_messages_published_total",
    help: "Messages appended to the log by this instance.",
    labelNames: ["db"] as const,
    registers: [this.registry],
    collect: (): void => this.publishedTallies.flushInto(this.published),
  });
  readonly delivered: Counter<"transport"> = new Counter({
    name: "tidings_messages_delivered_total",
    help: "Messages sent to clients, by transport.",
    labelNames: ["transport"] as const,
    registers: [this.registry],
    collect: (): void => this.deliveredTallies.flushInto(this.delivered),
  });
  readonly storeLatency = new Histogram({
    name: "tidings_store_operation_seconds",
    help: "Latency of store operations.",
    labelNames: ["op"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "tidings_errors_total",
    help: "Errors answered to clients, by code.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  /** Promises that rejected with nobody waiting (`tidings serve` logs each and keeps serving): alert on it. */
  readonly unhandledRejections = new Counter({
    name: "tidings_unhandled_rejections_total",
    help: "Promise rejections nobody handled (a bug); the server logged each and kept serving.",
    registers: [this.registry],
  });

  /** Connections and requests refused by a resource cap (docs/security.md), by reason. */
  readonly refused = new Counter({
    name: "tidings_refused_total",
    help: "Connections and requests refused by a resource cap, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** Reads the bytes written to client sockets and not yet handed to the kernel (set by the server). */
  unsentBytes: () => number = () => 0;
  readonly unsent: Gauge = new Gauge({
    name: "tidings_http_unsent_bytes",
    help: "Bytes written to client sockets and not yet handed to the kernel (clients not reading).",
    registers: [this.registry],
    collect: (): void => this.unsent.set(this.unsentBytes()),
  });

  private readonly deliveredTallies = new Tallies("transport");
  private readonly publishedTallies = new Tallies("db");

  /** The published count of one database, added to the counter when scraped. */
  publishedIn(db: string): { count: number } {
    return this.publishedTallies.of(db);
  }

  /** The delivered count of one transport, added to the counter when scraped. */
  deliveredVia(transport: string): { count: number } {
    return this.deliveredTallies.of(transport);
  }

  /**
   * For stores with a read horizon (PostgreSQL): how far the oldest open write transaction
   * holds readers back, read when scraped. Registered once per registry.
   */
  watchHorizonLag(read: () => Promise<number>): void {
    if (this.registry.getSingleMetric("tidings_store_horizon_lag_seconds") !== undefined) return;
    new Gauge({
      name: "tidings_store_horizon_lag_seconds",
      help: "Age of the oldest open write transaction holding back log readers (PostgreSQL).",
      registers: [this.registry],
      async collect() {
        try {
          this.set((await read()) / 1000);
        } catch {
          // store unreachable while scraping: leave the last value
        }
      },
    });
  }

  constructor(options: { defaults?: boolean } = {}) {
    if (options.defaults !== false) collectDefaultMetrics({ register: this.registry, prefix: "tidings_process_" });
  }
}
