import type { BusMessage } from "./transports/transport.js";

/** Called with each message of the subscription's channels, once, in log order. */
export type MessageHandler = (message: BusMessage, channel: string) => void;

export interface SubscribeOptions {
  /** Start after this message_id (a cursor saved earlier); by default, from now. */
  readonly from?: string;
  /** Called when the server says messages on these channels may have been missed (reload your state). */
  readonly onGap?: (channels: readonly string[]) => void;
}

/**
 * One `subscribe()`: its channels, its cursor (the message_id it has read up to, to save and
 * pass as `from` later), and `unsubscribe()`. The client reads all subscriptions in one stream
 * from the oldest cursor among them; each subscription skips what it has already passed, so a
 * handler never sees a message twice.
 */
export class Subscription {
  readonly channels: readonly string[];
  private readonly channelSet: ReadonlySet<string>;
  private position: string | null;
  private afterGap = false;
  private accepted = false;
  private live = true;
  private settle!: { resolve(): void; reject(e: Error): void };
  /** Resolves once the server accepted the subscription; rejects when it refused it (a forbidden channel). */
  readonly ready: Promise<void>;

  /** @internal created by `client.subscribe()` */
  constructor(
    channels: readonly string[],
    private readonly handler: MessageHandler,
    from: string | null,
    private readonly onGap: ((channels: readonly string[]) => void) | undefined,
    private readonly detach: () => void,
  ) {
    this.channels = Object.freeze([...new Set(channels)]);
    this.channelSet = new Set(this.channels);
    this.position = from;
    this.ready = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // A refusal nobody awaited is reported through the client's `error` event.
    this.ready.catch(() => undefined);
  }

  /** The message_id of the last message this subscription has passed (null before the first). */
  get cursor(): string | null {
    return this.position;
  }

  get active(): boolean {
    return this.live;
  }

  /** @internal */
  get isReady(): boolean {
    return this.accepted;
  }

  unsubscribe(): void {
    if (!this.live) return;
    this.live = false;
    this.detach();
  }

  /**
   * @internal A message of the stream, in log order. Messages of other channels move the
   * cursor too: the stream covers every channel of this subscription, so nothing of ours lies
   * before them unread.
   */
  offer(channel: string, message: BusMessage): void {
    if (!this.live) return;
    const id = message.message_id;
    if (!this.isNew(id)) return;
    this.position = id;
    this.afterGap = false;
    if (this.channelSet.has(channel)) this.handler(message, channel);
  }

  private isNew(id: string): boolean {
    const at = this.position;
    if (at === null || id > at) return true;
    // After a gap the log may have restarted under another epoch (`<epoch>:<position>`).
    return this.afterGap && epochOf(id) !== epochOf(at);
  }

  /** @internal */
  gap(channels: readonly string[]): void {
    this.afterGap = true;
    this.onGap?.(channels);
  }

  /** @internal */
  markReady(): void {
    if (this.accepted) return;
    this.accepted = true;
    this.settle.resolve();
  }

  /** @internal */
  fail(error: Error): void {
    this.live = false;
    this.settle.reject(error);
  }

  /** @internal */
  deactivate(): void {
    this.live = false;
  }
}

function epochOf(id: string): string {
  const colon = id.indexOf(":");
  return colon < 0 ? "" : id.slice(0, colon);
}
