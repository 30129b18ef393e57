/** Messages between the runner and its client and publisher processes (over fork IPC). */

export interface Target {
  readonly host: string;
  readonly port: number;
  readonly db: string;
}

export type ToClient =
  | { type: "start"; target: Target; maxMessages: number | null; clients: Array<{ user: string; token: string }> }
  | { type: "expect"; broadcasts: number; perUser: Record<string, number> }
  | { type: "report" };

export interface ClientStats {
  deliveries: number;
  responses: number;
  lost: number;
  outOfOrder: number;
  duplicates: number;
  errors: number;
  reconnects: number;
  firstDelivery: number;
  lastDelivery: number;
  latency: Array<[number, number]>;
}

export type FromClient = { type: "ready" } | { type: "done" } | ({ type: "stats" } & ClientStats) | { type: "log"; text: string };

export type Scenario =
  | { kind: "rate"; users: number; userRate: number; broadcastRate: number; durationMs: number }
  | { kind: "backlog"; users: number; broadcasts: number; perUser: number };

export type ToPublisher = { type: "init"; target: Target; token: string } | { type: "sync" } | { type: "syncStop" } | { type: "run"; scenario: Scenario };

export type FromPublisher =
  | { type: "syncStopped" }
  | { type: "published"; broadcasts: number; perUser: Record<string, number>; startedAt: number; endedAt: number; requests: number }
  | { type: "error"; text: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** The message a publisher sends: `k` is the stream (s sync, b broadcast, u per user). */
export interface BenchMessage {
  readonly message_id: string;
  readonly type: string;
  readonly k: "s" | "b" | "u";
  readonly seq: number;
  readonly ts: number;
}
