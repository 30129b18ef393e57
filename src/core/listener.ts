import type { StoredMessage } from "../stores/store.js";

/**
 * Something waiting for messages on some channels of one database: a parked long-poll or a
 * live stream (WebSocket subscription, SSE). The log calls `push` for every new message on
 * one of its channels with an id above `cursor`, then `flush` once per batch, so a
 * listener can answer or write once per batch instead of once per message.
 */
export interface Listener {
  readonly channels: ReadonlySet<string>;
  /** Last message id this listener has seen (exclusive lower bound for pushes). */
  cursor: string | null;
  push(message: StoredMessage): void;
  flush(): void;
  /**
   * What came after `cursor` may be lost (retention passed the log's head, or the store was
   * wiped and has a new epoch): called before any newer message, with `cursor` reset to null.
   */
  gap?(): void;
}

/** What a reader gets: messages in log order, and whether some may have been missed before them. */
export interface Delivery {
  readonly messages: StoredMessage[];
  readonly gap: boolean;
}
