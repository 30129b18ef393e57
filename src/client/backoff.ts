/** Full-jitter exponential backoff: a random delay up to min(max, base · 2^attempt). */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = 250,
    private readonly maxMs = 10_000,
  ) {}

  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(Math.random() * cap);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * The wait before a reconnect. It keeps a Node process alive on purpose: a worker whose only
 * work is its connection must not exit while the server restarts (an unref'd wait let it exit
 * with code 0 and leave its commands pending). `close()` aborts it through `signal`.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
