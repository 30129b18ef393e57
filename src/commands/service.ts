import type { CommandHost } from "./host.js";
import { TidingsError } from "../errors.js";
import type { CommandOutcome, CommandRecord } from "../stores/store.js";
import type { CommandContext } from "./context.js";
import { DatabaseOpener } from "./database-opener.js";
import { ExpiryScheduler } from "./expiry.js";
import { CommandClaimer, type ClaimerEvents } from "./claimer.js";
import { storeCommand, type SendOptions } from "./sending.js";
import { cancelCommand, completeCommand, expireDue, startCommand } from "./transitions.js";
import { OutcomeWaiters, type WaitOptions } from "./outcome-waiters.js";
import { listCommands, readCommand, type ListFilter } from "./reading.js";
import { claimCommands, claimCursor, releaseClaims, renewClaims } from "./leases.js";

export type { SendOptions } from "./sending.js";
export type { WaitOptions } from "./outcome-waiters.js";
export { MAX_LIST, type ListFilter } from "./reading.js";

export interface SentCommand {
  /** The command as stored (pending when just created). */
  readonly command: CommandRecord;
  /** False when an earlier command with the same idempotency key was returned. */
  readonly created: boolean;
  /** Resolves with the command in its final state (whichever it is); created on first use. */
  readonly outcome: Promise<CommandRecord>;
}

/** Deadlines nearer than this get a timer of their own. */
const EXPIRY_HORIZON_MS = 120_000;

/**
 * Server-to-client commands on top of the core: commands live in the store, and every
 * change a client or waiter must learn of is announced as a message on the log
 * (wake-ups.ts), so that any instance's clients and waiters wake. Messages are hints:
 * whoever wakes re-reads the store. This class is the one entry point; each job is in a
 * module of its own: sending.ts, transitions.ts, outcome-waiters.ts, reading.ts,
 * leases.ts and claimer.ts (what one client holds), database-opener.ts.
 */
export class CommandService {
  private readonly ctx: CommandContext;
  private readonly expiry: ExpiryScheduler;
  private readonly waiters: OutcomeWaiters;
  private readonly claimers = new Set<CommandClaimer>();
  private closed = false;

  constructor(private readonly bus: CommandHost) {
    this.expiry = new ExpiryScheduler({
      intervalMs: bus.options.commands.expiryIntervalMs,
      horizonMs: EXPIRY_HORIZON_MS,
      expire: (db, now) => expireDue(this.ctx, db, now),
      onError: (err, db) => this.bus.logger.warn({ err, db }, "command expiry failed; retrying on the next sweep"),
    });
    const opener = new DatabaseOpener(bus, this.expiry, () => this.closed);
    const service = this;
    this.ctx = {
      host: bus,
      expiry: this.expiry,
      get closed() {
        return service.closed;
      },
      open: (db) => opener.open(db),
    };
    this.waiters = new OutcomeWaiters(this.ctx);
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

  // ---- the sender's side ---------------------------------------------------------------------

  /** Stores a command for `address`, wakes its clients, and returns it with a promise of its outcome. */
  async send(db: string, address: string, method: string, args: readonly unknown[] = [], options: SendOptions = {}): Promise<SentCommand> {
    const { command, created } = await storeCommand(this.ctx, db, address, method, args, options);
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

  get(db: string, id: string): Promise<CommandRecord> {
    return readCommand(this.ctx, db, id);
  }

  /** The command, or null: for housekeeping that must not throw on a missing one. */
  peek(db: string, id: string): Promise<CommandRecord | null> {
    return this.bus.store.getCommand(db, id);
  }

  /** Newest first. */
  list(db: string, filter: ListFilter = {}): Promise<CommandRecord[]> {
    return listCommands(this.ctx, db, filter);
  }

  /** Cancels a command without an outcome; one that already has one is refused (409). */
  cancel(db: string, id: string): Promise<CommandRecord> {
    return cancelCommand(this.ctx, db, id);
  }

  /**
   * Resolves with the command once it is final, or as it stands when `timeoutMs` passes or
   * the signal aborts. Rejects when it does not exist, or when the bus closes.
   */
  wait(db: string, id: string, options: WaitOptions = {}): Promise<CommandRecord> {
    return this.waiters.wait(db, id, options);
  }

  // ---- the client's side ---------------------------------------------------------------------

  /** Takes up to `limit` commands of `address` for `claimer` under a lease (leases.ts). */
  claim(db: string, address: string, claimer: string, limit: number): Promise<CommandRecord[]> {
    return claimCommands(this.ctx, db, address, claimer, limit);
  }

  /** delivered → running, by its claimer. */
  start(db: string, id: string, claimer: string): Promise<CommandRecord> {
    return startCommand(this.ctx, db, id, claimer);
  }

  /** Records the client's outcome; the first recorded outcome wins, later ones are refused. */
  complete(db: string, id: string, claimer: string, outcome: CommandOutcome): Promise<CommandRecord> {
    return completeCommand(this.ctx, db, id, claimer, outcome);
  }

  /** Extends the leases of what `claimer` holds. */
  renew(db: string, claimer: string): Promise<number> {
    return renewClaims(this.ctx, db, claimer);
  }

  /** Puts back to pending what `claimer` holds and wakes the other clients of those addresses. */
  release(db: string, claimer: string, wake: Iterable<{ readonly id: string | null; readonly address: string }>): Promise<number> {
    return releaseClaims(this.ctx, db, claimer, wake);
  }

  /** A connection's commands, for a wire that pushes them: claims, lease renewal, release on close. */
  claimer(db: string, claimer: string, events: ClaimerEvents): CommandClaimer {
    if (this.closed) throw new TidingsError("TIDINGS_ERR_SHUTTING_DOWN");
    const opts = this.bus.options.commands;
    const c = new CommandClaimer(this, this.bus, db, claimer, events, {
      maxInFlight: opts.maxInFlight,
      renewIntervalMs: Math.max(100, Math.floor(opts.leaseMs / 3)),
      onClose: () => this.claimers.delete(c),
    });
    this.claimers.add(c);
    return c;
  }

  /** The log's head for `db` before a claim: polling `command:<address>` after it misses no wake-up. */
  cursor(db: string): Promise<string | null> {
    return claimCursor(this.ctx, db);
  }

  // ---- housekeeping --------------------------------------------------------------------------

  /** Expires what is due in `db` now (the timer does this by itself; tests may call it). */
  expireNow(db: string): Promise<void> {
    return this.expiry.run(db);
  }

  /** Stops timers, claimers and waiters (waiters reject with shutting-down); safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.expiry.close();
    this.waiters.stopAll();
    await Promise.all([...this.claimers].map((c) => c.close()));
  }
}
