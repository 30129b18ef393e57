import { addressChannel, FINAL_TYPE, type CommandDelivery } from "../protocol/commands.js";
import { claimLoop } from "../protocol/claim-loop.js";
import { Backoff, sleep } from "./backoff.js";
import { ClientEvents } from "./events.js";
import { CommandRunner, type Methods, type Outcome } from "./runner.js";
import { readBody } from "./transports/http.js";
import { RemoteError, type ClientOptions, type CommandClient } from "./types.js";

interface ClaimAnswer {
  readonly claimer: string;
  readonly cursor: string | null;
  readonly lease_ms: number;
  readonly commands: CommandDelivery[];
}

interface PolledMessage {
  readonly message_id?: unknown;
  readonly type?: unknown;
  readonly data?: unknown;
}

interface PollAnswer {
  readonly message: PolledMessage | null;
  readonly messages?: ReadonlyArray<{ readonly message: PolledMessage }>;
}

/** Answers to a result that mean it needs no resending. */
const SETTLED_CODES = new Set(["TIDINGS_ERR_COMMAND_FINAL", "TIDINGS_ERR_COMMAND_NOT_FOUND"]);
/** Answers to a result that the server will never accept: report an error instead. */
const REFUSED_CODES = new Set(["TIDINGS_ERR_COMMAND_TOO_LARGE", "TIDINGS_ERR_COMMAND_INVALID"]);

/**
 * Serves commands over plain HTTP (the seed's pop / push-result model): claims what is
 * pending for each address, runs it, posts the result; when there is nothing to claim it
 * long-polls `POST /<db>/bus` on `command:<address>` to be woken. Its claimer name lasts as
 * long as the client, so a network blip does not lose its claims; it renews their leases.
 */
export class LongPollCommandClient extends ClientEvents implements CommandClient {
  private readonly claimer = randomId();
  private readonly runner: CommandRunner;
  private readonly loops = new Map<string, Promise<void>>();
  private readonly stop = new AbortController();
  private readonly doFetch: typeof fetch;
  private readonly base: string;
  private readonly maxInFlight: number;
  private readonly roomWaiters = new Set<() => void>();
  private leaseMs = 30_000;
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(private readonly options: ClientOptions) {
    super();
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new Error("No fetch implementation: pass one as the fetch option.");
    this.doFetch = f.bind(globalThis);
    this.base = `${options.url.replace(/\/+$/, "")}/${encodeURIComponent(options.db)}`;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.runner = new CommandRunner(
      {
        started: (id) => void this.started(id),
        result: (id, outcome) => void this.sendResult(id, outcome),
      },
      { startDelayMs: options.startDelayMs ?? 20 },
    );
  }

  get running(): number {
    return this.runner.running;
  }

  /** Serves `address`; resolves after the first claim (rejects when the server refuses the address). */
  async expose(address: string, methods: Methods): Promise<void> {
    this.runner.expose(address, methods);
    if (this.loops.has(address) || this.closed) return;
    const first = await this.claim(address);
    if (this.closed) return;
    this.armRenewal(first.lease_ms);
    this.loops.set(address, this.loop(address, first));
  }

  /** The claim loop of `address` (protocol/claim-loop.ts), from the first claim's answer; failures back off and retry. */
  private async loop(address: string, first: ClaimAnswer & { limit: number }): Promise<void> {
    const backoff = new Backoff(this.options.reconnectBaseMs ?? 250, this.options.reconnectMaxMs ?? 10_000);
    let pending: (ClaimAnswer & { limit: number }) | null = first;
    // Where this address's channel was read up to: from the first claim on, only polls move
    // it, so a cancel announced while we were claiming is still seen.
    let cursor = first.cursor;
    while (!this.closed) {
      try {
        await claimLoop<CommandDelivery>({
          live: () => !this.closed,
          room: async () => {
            if (pending !== null) return pending.limit;
            await this.room();
            return this.claimLimit();
          },
          claim: async (limit) => {
            const answer = pending ?? (await this.claim(address, limit));
            pending = null;
            return answer.commands;
          },
          deliver: (commands) => {
            for (const c of commands) this.runner.deliver(c);
          },
          wake: async () => {
            cursor = await this.waitForWake(address, cursor);
            backoff.reset();
            return true;
          },
        });
        return;
      } catch (e) {
        pending = null;
        if (this.closed) return;
        this.emit("error", e instanceof Error ? e : new Error(String(e)));
        await sleep(backoff.next(), this.stop.signal);
      }
    }
  }

  /** As many as there are free places, 1 to 100. */
  private claimLimit(): number {
    return Math.max(1, Math.min(100, this.maxInFlight - this.runner.running));
  }

  private async claim(address: string, limit = this.claimLimit()): Promise<ClaimAnswer & { limit: number }> {
    const answer = (await this.post("commands/claim", { address, claimer: this.claimer, limit }, this.stop.signal)) as ClaimAnswer;
    return { ...answer, limit };
  }

  /**
   * Parks on the address's channel after `cursor`; a `command-final` there cancels a running
   * command. Returns the cursor after what it read.
   */
  private async waitForWake(address: string, cursor: string | null): Promise<string | null> {
    const answer = (await this.post(
      "bus",
      { last_message: cursor, channels: [addressChannel(address)], max_messages: 100 },
      this.stop.signal,
    )) as PollAnswer;
    const messages = answer.messages?.map((m) => m.message) ?? (answer.message ? [answer.message] : []);
    let next = cursor;
    for (const m of messages) {
      if (typeof m.message_id === "string") next = m.message_id;
      if (m.type !== FINAL_TYPE || typeof m.data !== "object" || m.data === null) continue;
      const { id, state } = m.data as { id?: unknown; state?: unknown };
      if (typeof id === "string") this.runner.cancel(id, typeof state === "string" ? state : "cancelled");
    }
    return next;
  }

  /** Waits until fewer than maxInFlight commands run. */
  private room(): Promise<void> {
    if (this.runner.running < this.maxInFlight || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.add(resolve));
  }

  private async started(id: string): Promise<void> {
    try {
      await this.post(`commands/${encodeURIComponent(id)}/start`, { claimer: this.claimer });
    } catch (e) {
      // Starting is informative: the result is what counts.
      if (!(e instanceof RemoteError)) this.emit("error", e instanceof Error ? e : new Error(String(e)));
    }
  }

  private async sendResult(id: string, outcome: Outcome): Promise<void> {
    for (const resolve of this.roomWaiters) resolve();
    this.roomWaiters.clear();
    const backoff = new Backoff(this.options.reconnectBaseMs ?? 250, this.options.reconnectMaxMs ?? 10_000);
    let body: Outcome = outcome;
    for (let attempt = 0; attempt < 8 && !this.closed; attempt++) {
      try {
        await this.post(`commands/${encodeURIComponent(id)}/result`, { claimer: this.claimer, ...body });
        this.runner.acknowledged(id);
        return;
      } catch (e) {
        if (e instanceof RemoteError) {
          if (SETTLED_CODES.has(e.code)) {
            this.runner.acknowledged(id);
            return;
          }
          if (REFUSED_CODES.has(e.code) && "result" in body) {
            body = { error: { message: `The result was refused: ${e.message}`, code: e.code } };
            continue;
          }
          // Not ours any more (the lease ran out): a later claim delivers it again, and then we resend.
          if (e.code === "TIDINGS_ERR_COMMAND_NOT_YOURS") return;
        }
        this.emit("error", e instanceof Error ? e : new Error(String(e)));
        await sleep(backoff.next(), this.stop.signal);
      }
    }
  }

  private armRenewal(leaseMs: number): void {
    if (this.renewTimer !== undefined) return;
    this.leaseMs = leaseMs > 0 ? leaseMs : this.leaseMs;
    this.renewTimer = setInterval(() => {
      if (this.runner.running === 0 && this.runner.unacknowledged === 0) return;
      this.post("commands/renew", { claimer: this.claimer }).catch((e: unknown) =>
        this.emit("error", e instanceof Error ? e : new Error(String(e))),
      );
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    (this.renewTimer as { unref?: () => void }).unref?.();
  }

  /** `signal` only for requests that may park (claims, polls): close() aborts them; the others finish. */
  private async post(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    const res = await this.doFetch(`${this.base}/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
      ...(signal !== undefined ? { signal } : {}),
    });
    const { json } = await readBody(res);
    if (!res.ok) {
      const err = (json as { error?: { message?: unknown } } | null)?.error;
      const message = typeof err?.message === "string" ? err.message : `HTTP ${res.status}`;
      throw RemoteError.from(message, { status: res.status, ...(typeof err === "object" && err !== null ? err : {}) });
    }
    return json;
  }

  /** Stops claiming and gives back what is pending here; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop.abort();
    clearInterval(this.renewTimer);
    for (const resolve of this.roomWaiters) resolve();
    this.roomWaiters.clear();
    const release = new AbortController();
    const timer = setTimeout(() => release.abort(), 2000);
    await Promise.allSettled(
      [...this.loops.keys()].map((address) => this.post("commands/release", { claimer: this.claimer, address }, release.signal)),
    );
    clearTimeout(timer);
    await Promise.allSettled([...this.loops.values()]);
  }
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
