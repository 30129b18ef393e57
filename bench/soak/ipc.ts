/** Messages between the soak runner and its client and publisher processes (fork IPC). */

export type Transport = "websocket" | "sse" | "longpoll";

export interface ClientSpec {
  readonly user: string;
  readonly token: string;
  readonly channel: string;
}

export interface ClientsConfig {
  readonly url: string;
  readonly db: string;
  readonly transport: Transport;
  readonly clients: readonly ClientSpec[];
  /** Mean time a client stays connected before it leaves on purpose, ms. */
  readonly churnMs: number;
  /** Longest time a client stays away before it resumes from its cursor, ms. */
  readonly pauseMs: number;
}

/** A message delivered twice, after a later one, or never, with what the client knew. */
export interface Anomaly {
  readonly kind: "duplicate" | "disorder" | "lost";
  readonly transport: Transport;
  readonly user: string;
  /** The message id (lost: the log positions missing). */
  readonly id: string;
  readonly cursor: string | null;
  /** Time since the connection that delivered it opened, ms. */
  readonly sinceConnectMs: number;
  readonly resumes: number;
  /** Lost: the positions the client got around the first one missing. */
  readonly around?: number[];
}

/** Counts since the start, and the latency histogram of the last interval only. */
export interface ClientsSample {
  readonly transport: Transport;
  readonly deliveries: number;
  /** Deliveries that waited out a client's absence (caught up after a resume): not in latency. */
  readonly caughtUp: number;
  readonly duplicates: number;
  readonly disorder: number;
  /** Messages of the log a client never got (known at the end only). */
  readonly lost: number;
  readonly gaps: number;
  /** Disconnections on purpose, each followed by a resume from the cursor. */
  readonly resumes: number;
  /** Connections the server or the network closed, or that failed. */
  readonly failures: number;
  readonly connected: number;
  /** Sparse latency histogram of the interval (bench/longpoll/histogram.ts). */
  readonly latency: Array<[number, number]>;
  readonly anomalies: Anomaly[];
}

export type ToClients =
  | { type: "start"; config: ClientsConfig }
  | { type: "sample" }
  /**
   * Stop leaving; wait (up to `timeoutMs`) until every client has the last message of its
   * channel, then check each client against `log`: the store's log positions per channel.
   */
  | { type: "finish"; log: Record<string, number[]>; timeoutMs: number };

export type FromClients =
  | { type: "ready"; connected: number }
  | ({ type: "sample" } & ClientsSample)
  | ({ type: "finished"; behind: number } & ClientsSample)
  | { type: "error"; text: string };

export interface PublisherConfig {
  readonly url: string;
  readonly db: string;
  readonly token: string;
  readonly channels: readonly string[];
  /** Messages per second over all channels. */
  readonly rate: number;
}

export type ToPublisher = { type: "start"; config: PublisherConfig } | { type: "stop" };
export type FromPublisher =
  | {
      type: "stopped";
      published: number;
      errors: number;
      firstError: string | null;
      /** Ticks left out because the channel's previous publish was still unanswered (the server is behind). */
      skipped: number;
      /** Every message_id acknowledged. */
      acked: string[];
    }
  | { type: "error"; text: string };
