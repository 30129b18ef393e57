import { randomUUID } from "node:crypto";
import type { CommandHost, HintItem } from "./host.js";
import { TidingsError } from "../errors.js";
import { hasProcessPresence } from "../stores/capabilities.js";
import {
  FINAL_COMMAND_STATES,
  type CommandFilter,
  type CommandOutcome,
  type CommandRecord,
  type CommandState,
} from "../stores/store.js";
import { addressChannel, FINAL_TYPE, OUTCOME_TYPE, outcomeChannel, WAKE_TYPE } from "../protocol/commands.js";
import { ExpiryScheduler } from "./expiry.js";
import { CommandDispatcher, type FrameSink } from "./dispatcher.js";
import {
  encodeArgs,
  resolveDeadline,
  validateAddress,
  validateIdempotencyKey,
  validateMethod,
} from "./validation.js";

export interface SendOptions {
  /** Absolute deadline: a Date, ms since the epoch or an ISO 8601 string. @default now + commands.defaultDeadlineMs */
  readonly deadline?: Date | number | string | null;
  /** Relative deadline in milliseconds (instead of `deadline`). */
  readonly timeoutMs?: number | null;
  /** Sending again with the same key for the same address returns the first command. */
  readonly idempotencyKey?: string | null;
}

export interface SentCommand {
  /** The command as stored (pending when just created). */
  readonly command: CommandRecord;
  /** False when an earlier command with the same idempotency key was returned. */
  readonly created: boolean;
  /** Resolves with the command in its final state (whichever it is); created on first use. */
  readonly outcome: Promise<CommandRecord>;
}

export interface WaitOptions {
  /** Give up after this long and resolve with the command as it stands. @default no limit */
  readonly timeoutMs?: number;
  /** Stops waiting (resolving with the command as it stands). */
  readonly signal?: AbortSignal;
}

export interface ListFilter {
  readonly address?: string;
  readonly states?: readonly CommandState[];
  readonly since?: number;
  readonly until?: number;
  /** @default 100 */
  readonly limit?: number;
}

export const MAX_LIST = 1000;
/** A waiter re-reads the store this often even without a hint (a lost hint cannot strand it). */
const RECHECK_MS = 5000;
/** Deadlines nearer than this get a timer of their own. */
const EXPIRY_HORIZON_MS = 120_000;

/**
 * Server-to-client commands on top of the core: commands live in the store, and every
 * change a client or waiter must learn of is announced as a message on the log — `command`
 * on `command:<address>` when one becomes pending, `command-outcome` on
 * `command-outcome:<id>` when one ends — so that any instance's clients and waiters wake.
 * Messages are hints: whoever wakes re-reads the store.
 */
export class CommandService {
  private readonly expiry: ExpiryScheduler;
  /** Per database: stale claims of a previous life released (single-process stores). */
  private readonly opened = new Map<string, Promise<void>>();
  private readonly stoppers = new Set<() => void>();
  private readonly dispatchers = new Set<CommandDispatcher>();
  private closed = false;

  constructor(private readonly bus: CommandHost) {
    this.expiry = new ExpiryScheduler({
      intervalMs: bus.options.commands.expiryIntervalMs,
      horizonMs: EXPIRY_HORIZON_MS,
      expire: (db, now) => this.expireDue(db, now),
      onError: (err, db) => this.bus.logger.warn({ err, db }, "command expiry failed; retrying on the next sweep"),
    });
  }

  /**
   * Sweeps every configured database from now on, so that deadlines of commands sent by
   * other instances or before a restart fire. A server calls this; an application that
   * only embeds the bus sweeps just the databases it uses commands in.
   */
  sweepConfiguredDatabases(): void {
    for (const db of Object.keys(this.bus.options.databases)) {
      if (db !== "*" && this.bus.options.databases[db]!.bus) this.expiry.track(db);
    }
  }

  private get options() {
    return this.bus.options.commands;
  }

  private get store() {
    return this.bus.store;
  }

  // ---- the sender's side ---------------------------------------------------------------------

  /** Stores a command for `address`, wakes its clients, and returns it with a promise of its outcome. */
  async send(db: string, address: string, method: string, args: readonly unknown[] = [], options: SendOptions = {}): Promise<SentCommand> {
    validateAddress(address);
    validateMethod(method);
    const argsText = encodeArgs(args, this.options.maxArgsBytes);
    const idempotencyKey = validateIdempotencyKey(options.idempotencyKey);
    const now = Date.now();
    const deadline = resolveDeadline(options, now, this.options.defaultDeadlineMs);
    await this.open(db);
    // Count then create is not atomic: concurrent senders may pass the limit by a few.
    const open = await this.store.countOpenCommands(db, address);
    if (open >= this.options.maxOpenPerAddress) {
      // A resend (the sender retrying after a lost answer) still gets its first command back.
      const existing = idempotencyKey === null ? null : await this.store.findCommandByKey(db, address, idempotencyKey);
      if (existing !== null) return this.sent(db, existing, false);
      throw new TidingsError(
        "TIDINGS_ERR_COMMAND_TOO_MANY",
        `Address ${address} already has ${open} commands without an outcome (at most ${this.options.maxOpenPerAddress}).`,
        { details: { address, max: this.options.maxOpenPerAddress } },
      );
    }
    const { command, created } = await this.store.createCommand(db, {
      id: randomUUID(),
      address,
      method,
      args: argsText,
      deadline,
      idempotencyKey,
      now,
    });
    if (created) {
      this.expiry.schedule(db, deadline, now);
      await this.hint(db, [{ channel: addressChannel(address), message: { type: WAKE_TYPE, data: command.id } }]);
    }
    return this.sent(db, command, created);
  }

  private sent(db: string, command: CommandRecord, created: boolean): SentCommand {
    let outcome: Promise<CommandRecord> | undefined;
    const service = this;
    return {
      command,
      created,
      // Lazy: a sender that never asks holds no waiter (and no promise that could reject unseen).
      get outcome(): Promise<CommandRecord> {
        return (outcome ??= service.wait(db, command.id));
      },
    };
  }

  async get(db: string, id: string): Promise<CommandRecord> {
    await this.open(db);
    const c = await this.store.getCommand(db, id);
    if (c === null) throw notFound(id);
    return c;
  }

  /** The command, or null: for housekeeping that must not throw on a missing one. */
  peek(db: string, id: string): Promise<CommandRecord | null> {
    return this.store.getCommand(db, id);
  }

  /** Newest first. */
  async list(db: string, filter: ListFilter = {}): Promise<CommandRecord[]> {
    if (filter.address !== undefined) validateAddress(filter.address);
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) {
      throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `limit must be an integer from 1 to ${MAX_LIST}.`);
    }
    await this.open(db);
    const f: CommandFilter = {
      limit,
      ...(filter.address !== undefined ? { address: filter.address } : {}),
      ...(filter.states !== undefined ? { states: filter.states } : {}),
      ...(filter.since !== undefined ? { since: filter.since } : {}),
      ...(filter.until !== undefined ? { until: filter.until } : {}),
    };
    return this.store.listCommands(db, f);
  }

  /** Cancels a command without an outcome; one that already has one is refused (409). */
  async cancel(db: string, id: string): Promise<CommandRecord> {
    await this.open(db);
    const { command, changed } = await this.store.finishCommand(db, id, { state: "cancelled" }, null, Date.now());
    if (command === null) throw notFound(id);
    if (!changed) throw alreadyFinal(command);
    await this.announceFinal(db, [command], true);
    return command;
  }

  /**
   * Resolves with the command once it is final, or as it stands when `timeoutMs` passes or
   * the signal aborts. Rejects when it does not exist, or when the bus closes.
   */
  async wait(db: string, id: string, options: WaitOptions = {}): Promise<CommandRecord> {
    await this.open(db);
    const log = this.bus.log(db);
    await log.ready;
    let hinted = false;
    let wake: (() => void) | null = null;
    // Listen from the head before reading the store, so an outcome in between is not missed.
    const stream = this.bus.stream(db, [outcomeChannel(id)], log.head, {
      onMessages: (messages) => {
        if (messages.length === 0) return;
        hinted = true;
        wake?.();
      },
    });
    const until = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    try {
      for (;;) {
        hinted = false;
        const c = await this.store.getCommand(db, id);
        if (c === null) throw notFound(id);
        if (FINAL_COMMAND_STATES.has(c.state)) return c;
        if (c.deadline !== null) this.expiry.schedule(db, c.deadline);
        if (this.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
        const left = until - Date.now();
        if (left <= 0 || options.signal?.aborted) return c;
        if (hinted) continue;
        const reason = await new Promise<"hint" | "timer" | "stop">((resolve) => {
          const timer = setTimeout(() => done("timer"), Math.min(left, RECHECK_MS));
          timer.unref?.();
          const stop = (): void => done("stop");
          options.signal?.addEventListener("abort", stop, { once: true });
          this.stoppers.add(stop);
          wake = () => done("hint");
          const stoppers = this.stoppers;
          function done(why: "hint" | "timer" | "stop"): void {
            clearTimeout(timer);
            options.signal?.removeEventListener("abort", stop);
            stoppers.delete(stop);
            wake = null;
            resolve(why);
          }
        });
        if (reason === "stop") {
          if (this.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
          return (await this.store.getCommand(db, id)) ?? c;
        }
      }
    } finally {
      stream.close();
    }
  }

  // ---- the client's side ---------------------------------------------------------------------

  /**
   * Takes up to `limit` commands of `address` for `claimer` under a lease: pending ones, and
   * those whose previous claimer vanished. Commands already past their deadline are expired
   * instead of delivered.
   */
  async claim(db: string, address: string, claimer: string, limit: number): Promise<CommandRecord[]> {
    await this.open(db);
    if (limit <= 0) return [];
    const now = Date.now();
    const got = await this.store.claimCommands(db, address, claimer, limit, now, this.options.leaseMs);
    if (got.some((c) => c.deadline !== null && c.deadline <= now)) {
      await this.expiry.run(db);
      return got.filter((c) => c.deadline === null || c.deadline > now);
    }
    return got;
  }

  /** delivered → running, by its claimer. */
  async start(db: string, id: string, claimer: string): Promise<CommandRecord> {
    await this.open(db);
    const c = await this.store.startCommand(db, id, claimer, Date.now());
    if (c !== null) return c;
    throw await this.whyRefused(db, id);
  }

  /** Records the client's outcome; the first recorded outcome wins, later ones are refused. */
  async complete(db: string, id: string, claimer: string, outcome: CommandOutcome): Promise<CommandRecord> {
    await this.open(db);
    const { command, changed } = await this.store.finishCommand(db, id, outcome, claimer, Date.now());
    if (command === null) throw notFound(id);
    if (!changed) throw FINAL_COMMAND_STATES.has(command.state) ? alreadyFinal(command) : notYours(id);
    await this.announceFinal(db, [command], false);
    return command;
  }

  /** Extends the leases of what `claimer` holds. */
  async renew(db: string, claimer: string): Promise<number> {
    await this.open(db);
    return this.store.renewClaims(db, claimer, Date.now(), this.options.leaseMs);
  }

  /**
   * Puts back to pending what `claimer` holds (its client went away) and wakes the other
   * clients of those addresses. `wake` names the commands and addresses known to be held.
   */
  async release(db: string, claimer: string, wake: Iterable<{ readonly id: string | null; readonly address: string }>): Promise<number> {
    // No open(): dispatchers release while the service closes, before the store does.
    const n = await this.store.releaseClaims(db, claimer);
    if (n > 0) {
      const items: HintItem[] = [];
      for (const w of wake) items.push({ channel: addressChannel(w.address), message: { type: WAKE_TYPE, data: w.id } });
      await this.hint(db, items);
    }
    return n;
  }

  /** A WebSocket connection's commands: claims, pushes, lease renewal, release on close. */
  dispatcher(db: string, claimer: string, sink: FrameSink): CommandDispatcher {
    if (this.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
    const s = new CommandDispatcher(this, this.bus, db, claimer, sink, {
      maxInFlight: this.options.maxInFlight,
      renewIntervalMs: Math.max(100, Math.floor(this.options.leaseMs / 3)),
      onClose: () => this.dispatchers.delete(s),
    });
    this.dispatchers.add(s);
    return s;
  }

  /** The log's head for `db` before a claim: polling `command:<address>` after it misses no wake-up. */
  async cursor(db: string): Promise<string | null> {
    const log = this.bus.log(db);
    await log.ready;
    return log.head;
  }

  // ---- housekeeping --------------------------------------------------------------------------

  /** Expires what is due in `db` now (the timer does this by itself; tests may call it). */
  expireNow(db: string): Promise<void> {
    return this.expiry.run(db);
  }

  private async expireDue(db: string, now: number): Promise<void> {
    if (this.closed) return;
    try {
      const expired = await this.store.expireCommands(db, now);
      if (expired.length > 0) await this.announceFinal(db, expired, true);
    } catch (e) {
      this.bus.logger.error({ err: e, db }, "command expiry failed");
    }
  }

  /**
   * Announces final commands to their waiters and, for those the client did not finish
   * itself (cancelled, expired), to the clients of their address, which may stop them.
   */
  private async announceFinal(db: string, commands: readonly CommandRecord[], toClients: boolean): Promise<void> {
    const items: HintItem[] = [];
    for (const c of commands) {
      items.push({ channel: outcomeChannel(c.id), message: { type: OUTCOME_TYPE, data: { id: c.id, state: c.state } } });
      if (toClients) {
        items.push({ channel: addressChannel(c.address), message: { type: FINAL_TYPE, data: { id: c.id, state: c.state } } });
      }
    }
    await this.hint(db, items);
  }

  /** Publishes wake-ups; a failure is logged, not thrown: the store already holds the truth. */
  private async hint(db: string, items: readonly HintItem[]): Promise<void> {
    const batch = Math.max(1, this.bus.options.maxBatch);
    for (let i = 0; i < items.length; i += batch) {
      try {
        await this.bus.publishMany(db, items.slice(i, i + batch));
      } catch (e) {
        this.bus.logger.warn({ err: e, db }, "command wake-up not published; clients and waiters recheck on their timers");
      }
    }
  }

  /**
   * Checks the database is served, and on a store that is not shared releases, once, the
   * claims left by this process's previous life when no other process uses the store:
   * their connections are gone for sure.
   */
  private open(db: string): Promise<void> {
    if (this.closed) return Promise.reject(new TidingsError("TIDINGS_ERR_SHUTTING_DOWN"));
    this.bus.log(db);
    let p = this.opened.get(db);
    if (p === undefined) {
      p = this.store.capabilities.shared ? Promise.resolve() : this.releaseStale(db);
      this.opened.set(db, p);
      p.catch(() => {
        if (this.opened.get(db) === p) this.opened.delete(db);
      });
      this.expiry.track(db);
    }
    return p;
  }

  private async releaseStale(db: string): Promise<void> {
    // Another server on the same SQLite file may hold these claims for live connections.
    if (hasProcessPresence(this.store) && (await this.store.anotherProcessAlive())) return;
    for (;;) {
      const held = await this.store.listCommands(db, { states: ["delivered", "running"], limit: 1000 });
      const claimers = new Set(held.map((c) => c.claimedBy).filter((c): c is string => c !== null));
      if (claimers.size === 0) return;
      for (const claimer of claimers) await this.store.releaseClaims(db, claimer);
    }
  }

  private async whyRefused(db: string, id: string): Promise<TidingsError> {
    const c = await this.store.getCommand(db, id);
    if (c === null) return notFound(id);
    if (FINAL_COMMAND_STATES.has(c.state)) return alreadyFinal(c);
    return notYours(id);
  }

  /** Stops timers, dispatchers and waiters (waiters reject with shutting-down); safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.expiry.close();
    for (const stop of [...this.stoppers]) stop();
    await Promise.all([...this.dispatchers].map((s) => s.close()));
  }
}

function notFound(id: string): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_NOT_FOUND", `No command ${JSON.stringify(id.slice(0, 100))}.`, {
    details: { id: id.slice(0, 100) },
  });
}

function alreadyFinal(c: CommandRecord): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_FINAL", `Command ${c.id} is already ${c.state}.`, {
    details: { id: c.id, state: c.state },
  });
}

function notYours(id: string): TidingsError {
  return new TidingsError("TIDINGS_ERR_COMMAND_NOT_YOURS", `Command ${id} is not held by this client.`, {
    details: { id },
  });
}
