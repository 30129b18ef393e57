/**
 * Several `tidings serve` processes on one shared store, and the publishers that drive them.
 * Every instance is the real CLI in a process of its own, so that `kill -9` is real.
 */
import { signToken } from "../../src/auth/tokens.js";
import type { Role } from "../../src/core/identity.js";
import { serve, type Served } from "../cli/cli-process.js";

/** Shared by every instance of a cluster, as production instances must share theirs. */
export const SECRET = "scale-out-secret-scale-out-secret-0123456789";
export const DB = "test";

export function token(user: string, role: Role = "subscriber"): Promise<string> {
  return signToken(SECRET, { db: DB, user, role, channels: ["*"] });
}

/** Wakes waiters when something they watch may have changed; no polling, no sleeps. */
export class Signal {
  private readonly waiters = new Set<() => void>();

  notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `pred` holds; rejects after `timeoutMs` with `what()` describing the state. */
  wait(pred: () => boolean, what: () => string, timeoutMs = 20_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

/** Resolves after `ms`: only for a client's reconnect back-off, never to let a test pass. */
export function backoff(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

// ---- instances -----------------------------------------------------------------------------

export interface Instance {
  readonly name: string;
  readonly url: string;
  readonly served: Served;
}

/** N instances of `tidings serve` on one store, each on its own port, with the same secret. */
export class Cluster {
  private constructor(readonly instances: Instance[]) {}

  static async start(storeUrl: string, n = 3, extraArgs: readonly string[] = []): Promise<Cluster> {
    const names = ["A", "B", "C", "D", "E"].slice(0, n);
    const started = await Promise.allSettled(
      names.map((name) =>
        serve(["--store", storeUrl, "--secret", SECRET, "--databases", DB, ...extraArgs]).then((served) => ({
          name,
          url: served.url,
          served,
        })),
      ),
    );
    const ok = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      await Promise.all(ok.map((i) => i.served.stop("SIGKILL")));
      throw (failed as PromiseRejectedResult).reason;
    }
    return new Cluster(ok);
  }

  get urls(): string[] {
    return this.instances.map((i) => i.url);
  }

  /** `kill -9`: the process dies with its sockets, nothing drains. */
  async kill(i: number): Promise<void> {
    await this.instances[i]!.served.stop("SIGKILL");
  }

  /** Drains every instance that still runs (SIGTERM), then makes sure they are gone. */
  async stop(): Promise<void> {
    await Promise.all(
      this.instances.map(async (inst) => {
        const timer = setTimeout(() => void inst.served.stop("SIGKILL"), 10_000).unref();
        await inst.served.stop("SIGTERM");
        clearTimeout(timer);
      }),
    );
  }
}

// ---- publishing ----------------------------------------------------------------------------

export interface PublishItem {
  readonly channel: string;
  readonly message: Record<string, unknown>;
}

async function postPublish(url: string, bearer: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
  const res = await fetch(`${url}/${DB}/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
    // A wedged instance must fail the test within its time, not after undici's 300 s.
    signal: signal ?? AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`publish to ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}

/** `POST /<db>/publish` of one message; resolves with its message_id once acknowledged. */
export async function publish(url: string, bearer: string, item: PublishItem): Promise<string> {
  const body = (await postPublish(url, bearer, item)) as { message_id: string };
  return body.message_id;
}

/** `POST /<db>/publish` of several messages, atomically and in order. */
export async function publishMany(url: string, bearer: string, items: readonly PublishItem[]): Promise<string[]> {
  const body = (await postPublish(url, bearer, { messages: items })) as { message_ids: string[] };
  return body.message_ids;
}

/**
 * Publishes without pause through several instances at once, `concurrency` requests in
 * flight, and keeps the id of every acknowledged message. A failed request (instance killed,
 * store connection lost) is counted and not retried: its outcome is unknown to the publisher,
 * exactly as for a real application.
 */
export class LoadPublisher {
  readonly acked: string[] = [];
  readonly errors: string[] = [];
  readonly signal = new Signal();
  private stopped = false;
  private workers: Promise<void>[] = [];
  private seq = 0;

  constructor(
    private readonly urls: readonly string[],
    private readonly bearer: string,
    private readonly channel: string,
    private readonly concurrency = 4,
  ) {}

  start(): this {
    this.workers = Array.from({ length: this.concurrency }, (_, w) => this.work(w));
    return this;
  }

  private async work(w: number): Promise<void> {
    for (let k = w; !this.stopped; k++) {
      const url = this.urls[k % this.urls.length]!;
      const n = this.seq++;
      try {
        const id = await publish(url, this.bearer, { channel: this.channel, message: { type: "load", n } });
        this.acked.push(id);
      } catch (e) {
        this.errors.push(`${url}: ${(e as Error).message}`);
        await backoff(20);
      }
      this.signal.notify();
    }
  }

  /** Waits until `more` further messages are acknowledged. */
  async ackedMore(more: number, timeoutMs = 20_000): Promise<void> {
    const target = this.acked.length + more;
    await this.signal.wait(
      () => this.acked.length >= target,
      () => `${target} acknowledged publishes (have ${this.acked.length}; last errors: ${this.errors.slice(-3).join(" | ")})`,
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }
}
