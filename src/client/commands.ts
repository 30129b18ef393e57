/**
 * Sending server-to-client commands from an application, a script or a page, over the HTTP
 * API (docs/protocol/commands.md): send, look up, list, cancel, and wait for an outcome.
 * Waiting survives server restarts and load balancers: it is a series of short server-side
 * waits, retried with full-jitter backoff while the server cannot answer.
 */
import type { CommandState, CommandView } from "../protocol/commands.js";
import { Backoff, sleep } from "./backoff.js";
import { TokenKeeper, type TokenSource } from "./token-keeper.js";
import { readBody } from "./transports/http.js";
import { RemoteError } from "./types.js";

export interface CommandSenderOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly db: string;
  /** A token with the `publisher` or `admin` role, or a function returning a fresh one. */
  readonly token: TokenSource;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Retries while the server cannot answer. @default {baseMs: 250, maxMs: 10000} */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
}

export interface SendOptions {
  /** Deadline from now, in seconds; the command expires unanswered after it. */
  readonly timeoutSeconds?: number;
  /** Absolute deadline (instead of timeoutSeconds). */
  readonly deadline?: Date | string;
  /** Sending again with the same key returns the first command instead of a new one. */
  readonly idempotencyKey?: string;
}

export interface ListFilter {
  readonly address?: string;
  readonly state?: CommandState | readonly CommandState[];
  readonly since?: Date | string;
  readonly until?: Date | string;
  /** 1 to 1000. @default 100 */
  readonly limit?: number;
}

export interface WaitOptions {
  /** How long to wait at most; the command as it stands then is returned. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Called before each retry while the server cannot be reached. */
  readonly onRetry?: (reason: string, delayMs: number) => void;
}

const FINAL: ReadonlySet<CommandState> = new Set(["succeeded", "failed", "expired", "cancelled"]);

/** Has the command an outcome (succeeded, failed, expired or cancelled)? */
export function isFinal(command: Pick<CommandView, "state">): boolean {
  return FINAL.has(command.state);
}

/**
 * One server wait at most this long: under fetch's own header timeout and the idle timeout of
 * common proxies, so a long wait is never cut by the path to the server.
 */
const WAIT_SLICE_MS = 60_000;

/** Answers that say "not now" rather than "no": the wait goes on after a backoff. */
const TRANSIENT_STATUS = new Set([502, 503, 504]);

export class CommandSender {
  private readonly tokens: TokenKeeper;
  private readonly fetchFn: typeof fetch;
  private readonly base: string;
  private readonly backoffMs: { readonly baseMs: number; readonly maxMs: number };

  constructor(options: CommandSenderOptions) {
    if (typeof options.url !== "string" || options.url.length === 0) throw new TypeError("CommandSender: url is required.");
    if (typeof options.db !== "string" || options.db.length === 0) throw new TypeError("CommandSender: db is required.");
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("CommandSender: no fetch implementation; pass one as the fetch option.");
    this.fetchFn = f.bind(globalThis);
    this.base = `${options.url.replace(/\/+$/, "")}/${encodeURIComponent(options.db)}/commands`;
    this.tokens = new TokenKeeper(options.token, () => {}, () => {});
    this.backoffMs = { baseMs: options.backoff?.baseMs ?? 250, maxMs: options.backoff?.maxMs ?? 10_000 };
  }

  /** Sends `method(...args)` to the client serving `address`; resolves with the new (or, by key, the first) command. */
  async send(address: string, method: string, args: readonly unknown[] = [], options: SendOptions = {}): Promise<CommandView> {
    if (options.timeoutSeconds !== undefined && options.deadline !== undefined) {
      throw new TypeError("send: give timeoutSeconds or deadline, not both.");
    }
    const body = {
      address,
      method,
      args,
      ...(options.timeoutSeconds !== undefined ? { timeout: options.timeoutSeconds } : {}),
      ...(options.deadline !== undefined ? { deadline: iso(options.deadline) } : {}),
      ...(options.idempotencyKey !== undefined ? { idempotency_key: options.idempotencyKey } : {}),
    };
    return (await this.request("POST", "", body)) as CommandView;
  }

  /** The command as it stands now. */
  async get(id: string): Promise<CommandView> {
    return (await this.request("GET", `/${encodeURIComponent(id)}`)) as CommandView;
  }

  /** Commands, newest first. */
  async list(filter: ListFilter = {}): Promise<CommandView[]> {
    const q = new URLSearchParams();
    if (filter.address !== undefined) q.set("address", filter.address);
    if (filter.state !== undefined) q.set("state", typeof filter.state === "string" ? filter.state : filter.state.join(","));
    if (filter.since !== undefined) q.set("since", iso(filter.since));
    if (filter.until !== undefined) q.set("until", iso(filter.until));
    if (filter.limit !== undefined) q.set("limit", String(filter.limit));
    const answer = (await this.request("GET", `?${q}`)) as { commands: CommandView[] };
    return answer.commands;
  }

  /** Cancels a command without an outcome; rejects with TIDINGS_ERR_COMMAND_FINAL when it has one. */
  async cancel(id: string): Promise<CommandView> {
    return (await this.request("POST", `/${encodeURIComponent(id)}/cancel`, {})) as CommandView;
  }

  /**
   * Waits until the command has an outcome or `timeoutMs` passed, and returns it as it stands
   * then (check `isFinal`). A server that restarts or is briefly unreachable meanwhile only
   * delays the answer; a refusal (unknown command, bad token) rejects with its RemoteError.
   */
  async waitFor(id: string, options: WaitOptions): Promise<CommandView> {
    const end = Date.now() + Math.max(0, options.timeoutMs);
    const backoff = new Backoff(this.backoffMs.baseMs, this.backoffMs.maxMs);
    let last: CommandView | null = null;
    for (;;) {
      const left = end - Date.now();
      const slice = Math.max(0, Math.min(left, WAIT_SLICE_MS));
      try {
        last = (await this.request("GET", `/${encodeURIComponent(id)}?wait=${slice / 1000}`, undefined, options.signal)) as CommandView;
        backoff.reset();
        if (isFinal(last) || Date.now() >= end) return last;
        continue;
      } catch (e) {
        if (options.signal?.aborted) throw e;
        if (!isTransient(e)) throw e;
        const delay = Math.min(backoff.next(), Math.max(0, end - Date.now()));
        if (Date.now() + delay >= end) {
          if (last !== null) return last;
          throw e;
        }
        options.onRetry?.(describe(e), delay);
        await sleep(delay, options.signal);
      }
    }
  }

  /** Stops refreshing the token. */
  close(): void {
    this.tokens.stop();
  }

  private async request(method: "GET" | "POST", path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    let token = await this.tokens.current();
    for (let attempt = 0; ; attempt++) {
      const res = await this.fetchFn(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal !== undefined ? { signal } : {}),
      });
      const { text, json } = await readBody(res);
      if (res.ok) return json;
      const error = errorOf(res.status, json, text);
      // An expired token is renewed once, when there is a way to renew it.
      if (error.code === "TIDINGS_ERR_AUTH_EXPIRED" && attempt === 0 && this.tokens.canRefresh) {
        token = await this.tokens.refresh();
        continue;
      }
      throw error;
    }
  }
}

/** A sender of commands: `createCommandSender({url, db, token}).send("software_dev.buildbot:5", "start")`. */
export function createCommandSender(options: CommandSenderOptions): CommandSender {
  return new CommandSender(options);
}

function errorOf(status: number, json: unknown, text: string): RemoteError {
  const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const message = typeof err?.message === "string" ? err.message : text.trim().slice(0, 200) || `HTTP ${status}`;
  const code = typeof err?.code === "string" ? err.code : `HTTP ${status}`;
  return new RemoteError(message, code, { status, ...(typeof err === "object" && err !== null ? err : {}) });
}

/** Network failures, and 502/503/504 (a restart, a proxy without a backend, a draining server). */
function isTransient(e: unknown): boolean {
  if (e instanceof RemoteError) return TRANSIENT_STATUS.has(Number(e.details.status));
  return e instanceof TypeError; // fetch's "fetch failed": refused, reset, unreachable
}

function describe(e: unknown): string {
  if (e instanceof RemoteError) return `${e.code}: ${e.message}`;
  const cause = (e as { cause?: { message?: unknown } }).cause;
  return typeof cause?.message === "string" ? cause.message : e instanceof Error ? e.message : String(e);
}

function iso(d: Date | string): string {
  return typeof d === "string" ? d : d.toISOString();
}
