import { TidingsError } from "../../errors.js";
import { UserBytes } from "./user-bytes.js";

/** One body being received: its user's bytes, and a deadline. */
export interface BodyWatch {
  /** `n` more bytes arrived: null, or the error to refuse the request with (the user is past the cap). */
  grew(n: number): TidingsError | null;
  /** The body is complete, refused or gone: its bytes are released (safe to call twice). */
  end(): void;
}

/**
 * Request bodies of authenticated users: each must arrive within `bodyTimeoutMs` (the
 * server's request timeout is the long-poll's, 330 s, far too long for a body), and one
 * user's bodies being received at once are capped in bytes over all its connections.
 * One sweep for every pending body, rather than a timer per request.
 */
export class BodyGuard {
  readonly bytes: UserBytes;
  private readonly pending = new Set<PendingBody>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly timeoutMs: number,
    maxBytesPerUser: number,
    private readonly refused: (reason: "body_timeout" | "bodies") => void,
  ) {
    this.bytes = new UserBytes(maxBytesPerUser);
  }

  /** Starts watching a body of `key`'s user; `onTimeout` runs if it has not ended in time. */
  watch(key: string, onTimeout: (error: TidingsError) => void): BodyWatch {
    const body = new PendingBody(this, key, onTimeout, Date.now());
    this.pending.add(body);
    if (this.sweeper === null) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(1_000, this.timeoutMs / 4)));
      this.sweeper.unref();
    }
    return body;
  }

  /** @internal */
  ended(body: PendingBody): void {
    this.pending.delete(body);
    if (this.pending.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** @internal */
  refuse(reason: "body_timeout" | "bodies"): void {
    this.refused(reason);
  }

  private sweep(): void {
    const due = Date.now() - this.timeoutMs;
    for (const body of this.pending) if (body.startedAt <= due) body.timedOut();
  }

  close(): void {
    for (const body of [...this.pending]) body.end();
  }
}

class PendingBody implements BodyWatch {
  private held = 0;
  private ended = false;

  constructor(
    private readonly guard: BodyGuard,
    private readonly key: string,
    private readonly onTimeout: (error: TidingsError) => void,
    readonly startedAt: number,
  ) {}

  grew(n: number): TidingsError | null {
    const { bytes } = this.guard;
    if (bytes.wouldExceed(this.key, n)) {
      this.guard.refuse("bodies");
      return new TidingsError(
        "TIDINGS_ERR_LIMIT_BODIES",
        `Your requests being received at once passed ${bytes.max} bytes; wait for them to finish.`,
        { details: { maxBytes: bytes.max } },
      );
    }
    bytes.add(this.key, n);
    this.held += n;
    return null;
  }

  timedOut(): void {
    if (this.ended) return;
    this.end();
    this.guard.refuse("body_timeout");
    this.onTimeout(
      new TidingsError("TIDINGS_ERR_REQUEST_TIMEOUT", `The request body did not arrive within ${this.guard.timeoutMs} ms.`),
    );
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.held > 0) this.guard.bytes.release(this.key, this.held);
    this.held = 0;
    this.guard.ended(this);
  }
}
