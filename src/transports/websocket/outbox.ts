import type { Duplex } from "node:stream";

/** Queued bytes at which an outbox writes at once instead of waiting for the end of the turn. */
const EAGER_FLUSH_BYTES = 64 * 1024;

/**
 * Runs every dirty outbox once per event-loop turn: all frames a socket got during the
 * turn (a burst of publishes, a catch-up page, replies) leave in one corked write, so the
 * cost per socket is one system call per turn rather than one per message.
 */
export class FlushScheduler {
  private dirty: Outbox[] = [];
  private immediate: NodeJS.Immediate | null = null;

  constructor(private readonly onFlushed: (messages: number) => void) {}

  mark(outbox: Outbox): void {
    this.dirty.push(outbox);
    if (this.immediate === null) this.immediate = setImmediate(this.run);
  }

  /** Messages written outside a scheduled turn, for the delivered-messages metric. */
  count(messages: number): void {
    if (messages > 0) this.onFlushed(messages);
  }

  private readonly run = (): void => {
    this.immediate = null;
    const list = this.dirty;
    this.dirty = [];
    let messages = 0;
    for (const o of list) messages += o.flush();
    if (messages > 0) this.onFlushed(messages);
  };

  close(): void {
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    for (const o of this.dirty) o.flush();
    this.dirty = [];
  }
}

/**
 * The frames waiting to be written to one socket, with the cap on what it may hold unsent:
 * a client that stops reading is reported once (`onOverflow`) instead of growing memory.
 */
export class Outbox {
  private readonly queue: Buffer[] = [];
  private bytes = 0;
  private messages = 0;
  private dirty = false;
  private stopped = false;
  private waiters: Array<() => void> | null = null;
  private onDrain: (() => void) | null = null;

  constructor(
    private readonly socket: Duplex,
    private readonly scheduler: FlushScheduler,
    private readonly cap: number,
    private readonly owner: { overflowed(bufferedBytes: number): void },
  ) {}

  /** Queues a complete frame; `message` counts it as a delivered message (not a reply). */
  push(frame: Buffer, message: boolean): void {
    if (this.stopped) return;
    this.queue.push(frame);
    this.bytes += frame.length;
    if (message) this.messages++;
    if (this.bytes >= EAGER_FLUSH_BYTES) {
      // A big burst (or a publisher that never yields to the event loop) is written now:
      // coalescing gains nothing at this size, and the queue here stays small.
      this.scheduler.count(this.flush());
      return;
    }
    if (!this.dirty) {
      this.dirty = true;
      this.scheduler.mark(this);
    }
  }

  /** Writes what is queued; returns how many messages left. */
  flush(): number {
    this.dirty = false;
    const q = this.queue;
    const n = q.length;
    if (n === 0 || this.stopped) return 0;
    const socket = this.socket;
    if (socket.destroyed) {
      this.stop();
      return 0;
    }
    if (n === 1) {
      socket.write(q[0]!);
    } else {
      socket.cork();
      for (let i = 0; i < n; i++) socket.write(q[i]!);
      socket.uncork();
    }
    q.length = 0;
    this.bytes = 0;
    const messages = this.messages;
    this.messages = 0;
    const buffered = socket.writableLength;
    if (buffered > this.cap) this.overflow(buffered);
    return messages;
  }

  /** Bytes not yet handed to the kernel: queued here plus held by the socket. */
  get pendingBytes(): number {
    return this.bytes + this.socket.writableLength;
  }

  /** Resolves once the socket's buffer has drained below `lowWater`; undefined when it is already. */
  writable(lowWater: number): Promise<void> | undefined {
    if (this.stopped) return undefined;
    if (this.bytes > 0) this.flush();
    if (this.stopped || this.socket.writableLength <= lowWater) return undefined;
    return new Promise<void>((resolve) => {
      if (this.waiters === null) {
        this.waiters = [];
        // Made on first need only: most sockets never wait.
        this.onDrain ??= () => this.wake();
        this.socket.once("drain", this.onDrain);
      }
      this.waiters.push(resolve);
    });
  }

  private wake(): void {
    const list = this.waiters ?? [];
    this.waiters = null;
    for (const w of list) w();
  }

  /** Writes what is queued and accepts nothing more (closing). */
  finish(): void {
    this.flush();
    this.stop();
  }

  /** Drops what is queued and accepts nothing more; pending `writable()` calls resolve. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.bytes = 0;
    this.messages = 0;
    if (this.onDrain !== null) this.socket.off("drain", this.onDrain);
    this.wake();
  }

  private overflow(bufferedBytes: number): void {
    this.stop();
    this.owner.overflowed(bufferedBytes);
  }
}
