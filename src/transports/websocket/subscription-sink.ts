import type { StoredMessage } from "../../stores/store.js";
import { encodeGapPush, encodePush } from "../../protocol/rohrpost.js";
import type { ConnectionApi } from "./connection-api.js";
import { frameText, pushFrame } from "./frame.js";
import type { Outbox } from "./outbox.js";
import type { PacedStream, StreamSink } from "../../core/paced-stream.js";

interface Pending {
  readonly started: (gap: boolean) => void;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Where one subscription of a connection delivers: pushes into the connection's outbox
 * (the frame of a message is shared by every socket), and the subscribe request's answer
 * once the first read is done. A class rather than closures: a server holds one per
 * subscription, thousands of them.
 */
export class SubscriptionSink implements StreamSink {
  stream: PacedStream | null = null;
  private readonly outbox: Outbox;
  /** The subscribe request waiting for the first read; null once answered. */
  private pending: Pending | null;

  constructor(
    private readonly conn: ConnectionApi,
    pending: Pending,
  ) {
    this.outbox = conn.outbox;
    this.pending = pending;
  }

  start(gap: boolean): void {
    const p = this.pending;
    this.pending = null;
    if (p === null) return;
    p.started(gap);
    p.resolve();
  }

  message(m: StoredMessage, gap: boolean): void {
    this.outbox.push(gap ? frameText(encodePush(m.channel, m.id, m.json, true, m.type)) : pushFrame(m), true);
  }

  gap(channels: readonly string[]): void {
    for (const c of channels) this.outbox.push(frameText(encodeGapPush(c)), false);
  }

  flush(): void {
    // The outbox writes once per event-loop turn, for every subscription of the socket at once.
  }

  writable(): Promise<void> | undefined {
    return this.outbox.writable(this.conn.lowWater());
  }

  error(e: unknown): void {
    const p = this.pending;
    this.pending = null;
    if (this.stream !== null) this.conn.streamFailed(this.stream, e, p === null);
    p?.reject(e);
  }

  /** Unsubscribed (or closed) before the first read came back: the request is done. */
  end(): void {
    const p = this.pending;
    this.pending = null;
    p?.resolve();
  }
}
