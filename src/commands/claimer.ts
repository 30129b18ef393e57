import type { Stream } from "../core/stream.js";
import type { CommandRecord, StoredMessage } from "../stores/store.js";
import { addressChannel, FINAL_TYPE, WAKE_TYPE } from "../protocol/commands.js";
import { claimLoop, WakeSignal } from "../protocol/claim-loop.js";
import type { CommandHost } from "./host.js";

/** The command service as one claimer uses it (claims under a lease). */
export interface ClaimService {
  cursor(db: string): Promise<string | null>;
  claim(db: string, address: string, claimer: string, limit: number): Promise<CommandRecord[]>;
  renew(db: string, claimer: string): Promise<number>;
  peek(db: string, id: string): Promise<CommandRecord | null>;
  release(db: string, claimer: string, wake: Iterable<{ readonly id: string | null; readonly address: string }>): Promise<number>;
}

/** How the claimer hands commands to its client; the wire that serves it decides the form. */
export interface ClaimerEvents {
  /** A command was claimed for the client, which now holds it. */
  deliver(command: CommandRecord): void;
  /** A command the client holds was cancelled or expired elsewhere (`state`, as announced): it should stop it. */
  stop(id: string, state: unknown): void;
}

export interface ClaimerOptions {
  /** Most commands held (delivered or running) at once by this claimer. */
  readonly maxInFlight: number;
  /** How often leases are renewed and the addresses re-claimed as a safety net. */
  readonly renewIntervalMs: number;
  readonly onClose: () => void;
}

interface Feed {
  readonly address: string;
  stream: Stream | null;
  /** Wakes the address's claim loop: a wake-up message, a freed place, the renewal tick. */
  readonly signal: WakeSignal;
  /** More may be claimable than there was room for: claim when room frees up. */
  backlog: boolean;
}

/**
 * The commands of one claimer (a connection of some wire): for each address it
 * registered, it listens on `command:<address>`, claims what is pending under a lease and
 * hands it on, up to `maxInFlight` at a time. It renews the leases while the claimer lives
 * and releases them when it closes, so another client gets them. It knows no wire: the
 * transport turns its events into frames.
 */
export class CommandClaimer {
  private readonly feeds = new Map<string, Feed>();
  /** Command id → address, for what this claimer holds and has not answered. */
  private readonly held = new Map<string, string>();
  private readonly loops = new Set<Promise<void>>();
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly service: ClaimService,
    private readonly bus: CommandHost,
    readonly db: string,
    readonly claimer: string,
    private readonly events: ClaimerEvents,
    private readonly options: ClaimerOptions,
  ) {
    this.timer = setInterval(() => void this.tick(), options.renewIntervalMs);
    this.timer.unref?.();
  }

  get addresses(): string[] {
    return [...this.feeds.keys()];
  }

  /** Starts serving `address` (again: a no-op); the first claim runs on the next turn. */
  async register(address: string): Promise<void> {
    if (this.feeds.has(address)) return;
    const cursor = await this.service.cursor(this.db);
    if (this.closed || this.feeds.has(address)) return;
    const feed: Feed = { address, stream: null, signal: new WakeSignal(), backlog: true };
    this.feeds.set(address, feed);
    feed.stream = this.bus.stream(this.db, [addressChannel(address)], cursor, {
      onMessages: (messages) => this.onMessages(feed, messages),
      onError: (e) => {
        // The tick re-opens the stream; until then it claims on its timer.
        this.bus.logger.warn({ err: e, address }, "command wake-up stream failed");
        feed.stream = null;
      },
    });
    // After the registration's answer has gone out, so the client sees it before the commands.
    setImmediate(() => this.serve(feed));
  }

  /** Stops taking new commands for `address`; what is held keeps running. */
  unregister(address: string): boolean {
    const feed = this.feeds.get(address);
    if (feed === undefined) return false;
    feed.stream?.close();
    feed.signal.close();
    this.feeds.delete(address);
    return true;
  }

  /** The client answered `id` (or it can no longer): frees its place. */
  settled(id: string): void {
    if (!this.held.delete(id)) return;
    for (const feed of this.feeds.values()) if (feed.backlog) feed.signal.notify();
  }

  holds(id: string): boolean {
    return this.held.has(id);
  }

  private onMessages(feed: Feed, messages: readonly StoredMessage[]): void {
    let wake = false;
    for (const m of messages) {
      if (m.type === WAKE_TYPE) wake = true;
      else if (m.type === FINAL_TYPE) this.finalElsewhere(m);
    }
    if (wake) feed.signal.notify();
  }

  /** A command this claimer holds was cancelled or expired: tell the client to stop it. */
  private finalElsewhere(m: StoredMessage): void {
    let data: unknown;
    try {
      data = (JSON.parse(m.json) as { data?: unknown }).data;
    } catch {
      return;
    }
    if (typeof data !== "object" || data === null) return;
    const { id, state } = data as { id?: unknown; state?: unknown };
    if (typeof id !== "string" || !this.held.has(id)) return;
    this.emit(() => this.events.stop(id, state));
    this.settled(id);
  }

  /** Runs the address's claim loop until it is unregistered or the claimer closes; a failed claim waits for the next tick. */
  private serve(feed: Feed): void {
    const live = (): boolean => !this.closed && this.feeds.get(feed.address) === feed;
    let room = 0;
    const loop = (async () => {
      while (live()) {
        try {
          await claimLoop({
            live,
            room: () => {
              room = this.options.maxInFlight - this.held.size;
              if (room <= 0) feed.backlog = true;
              return room;
            },
            claim: (limit) => this.service.claim(this.db, feed.address, this.claimer, limit),
            deliver: (got) => {
              for (const c of got) {
                this.held.set(c.id, c.address);
                // Pushed even while closing: close() releases them right after, and the client de-duplicates.
                this.emit(() => this.events.deliver(c));
              }
              feed.backlog = got.length === room;
            },
            wake: () => feed.signal.wait(),
          });
          return;
        } catch (e) {
          feed.backlog = true;
          this.bus.logger.warn({ err: e, address: feed.address }, "command claim failed; retrying on the next tick");
          if (!(await feed.signal.wait())) return;
        }
      }
    })();
    this.loops.add(loop);
    void loop.finally(() => this.loops.delete(loop));
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.held.size > 0) {
        await this.service.renew(this.db, this.claimer);
        await this.reconcile();
      }
    } catch (e) {
      this.bus.logger.warn({ err: e }, "command lease renewal failed");
    }
    for (const feed of this.feeds.values()) {
      if (feed.stream === null && !this.closed) {
        try {
          const cursor = await this.service.cursor(this.db);
          if (this.closed || feed.stream !== null) continue;
          feed.stream = this.bus.stream(this.db, [addressChannel(feed.address)], cursor, {
            onMessages: (messages) => this.onMessages(feed, messages),
            onError: () => {
              feed.stream = null;
            },
          });
        } catch {
          // the store is still down: claim below fails too, and the next tick tries again
        }
      }
      // Safety net for lost wake-ups and for leases that ran out elsewhere.
      feed.signal.notify();
    }
  }

  /**
   * Frees the places of held commands that ended or moved elsewhere without this
   * claimer hearing of it (a lost wake-up message): they would hold a place forever.
   */
  private async reconcile(): Promise<void> {
    for (const id of [...this.held.keys()]) {
      const c = await this.service.peek(this.db, id);
      if (this.closed) return;
      if (c !== null && c.claimedBy === this.claimer) continue;
      if (c !== null && (c.state === "cancelled" || c.state === "expired")) {
        const state = c.state;
        this.emit(() => this.events.stop(id, state));
      }
      this.settled(id);
    }
  }

  /** A wire that fails to hand a command on is closing: its claims are released then. */
  private emit(event: () => void): void {
    try {
      event();
    } catch (e) {
      this.bus.logger.debug({ err: e }, "command event not handed on; the claimer's connection is closing");
    }
  }

  /** Stops listening and releases every claim of this claimer; safe to call twice. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    clearInterval(this.timer);
    for (const feed of this.feeds.values()) {
      feed.stream?.close();
      feed.signal.close();
    }
    this.closing = (async () => {
      await Promise.allSettled([...this.loops]);
      const wake: Array<{ id: string | null; address: string }> = [...this.held].map(([id, address]) => ({ id, address }));
      if (wake.length === 0) for (const address of this.feeds.keys()) wake.push({ id: null, address });
      try {
        await this.service.release(this.db, this.claimer, wake);
      } catch (e) {
        this.bus.logger.warn({ err: e }, "releasing a closed claimer's commands failed; their leases will run out");
      }
      this.held.clear();
      this.feeds.clear();
      this.options.onClose();
    })();
    return this.closing;
  }
}
