/** Messages between the scale-out runner and its publisher and subscriber processes (fork IPC). */

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export type PublishMode =
  /** `POST /<db>/publish` round robin over the instances, `batch` messages per request. */
  | { kind: "http"; urls: string[]; token: string; concurrency: number; batch: number; durationMs: number }
  /**
   * The engine through a Bus in the publisher process: bus.publish / bus.publishMany; with
   * `combine`, concurrent publishes share appends (combiner.ts).
   */
  | { kind: "direct"; storeUrl: string; concurrency: number; batch: number; durationMs: number; combine?: boolean }
  /** PostgreSQL only: each publish in a transaction of the application (publishInTransaction). */
  | { kind: "transactional"; storeUrl: string; pgUrl: string; concurrency: number; batch: number; durationMs: number }
  /** PostgreSQL only: `SELECT <schema>.publish(...)`, one statement per message. */
  | { kind: "sql"; pgUrl: string; schema: string; concurrency: number; durationMs: number }
  /** A steady rate through one instance, each message stamped with its send time (`t`). */
  | { kind: "rate"; url: string; token: string; rate: number; batch: number; durationMs: number };

export interface PublishResult {
  readonly messages: number;
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly startedAt: number;
  readonly endedAt: number;
}

export type ToPublisher = { type: "run"; db: string; channel: string; mode: PublishMode };
export type FromPublisher = { type: "done"; result: PublishResult } | { type: "error"; text: string };

export type Transport = "websocket" | "sse" | "longpoll";

export interface SubscribeConfig {
  /** Connections are spread over these instances, round robin. */
  readonly urls: string[];
  readonly db: string;
  readonly token: string;
  readonly channel: string;
  readonly transport: Transport;
  readonly connections: number;
  /** Also report each delivery's message id and time (`times` in the stats), for delays measured from elsewhere. */
  readonly keepTimes?: boolean;
  /** Further channels each connection subscribes to. */
  readonly moreChannels?: string[];
}

export interface SubscriberStats {
  readonly transport: Transport;
  readonly deliveries: number;
  /** Fewest messages any one connection received. */
  readonly minPerConnection: number;
  readonly firstDelivery: number;
  readonly lastDelivery: number;
  readonly outOfOrder: number;
  readonly closed: number;
  /** Sparse latency histogram (bench/longpoll/histogram.ts). */
  readonly latency: Array<[number, number]>;
  /** With `keepTimes`: [message id, delivery time] of every delivery, all connections. */
  readonly times?: Array<[string, number]>;
}

export type ToSubscriber = { type: "start"; config: SubscribeConfig } | { type: "report" } | { type: "expect"; perConnection: number };
export type FromSubscriber =
  | { type: "ready" }
  | { type: "reached" }
  | ({ type: "stats" } & SubscriberStats)
  | { type: "error"; text: string };
