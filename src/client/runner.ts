import type { Static } from "@sinclair/typebox";
import type { CommandDelivery, CommandError } from "../protocol/commands.js";
import type { COMMAND_OUTCOME } from "../protocol/rohrpost-frames.js";

/** What a method sees as `this`: which command it runs, and a signal aborted on cancel or expiry. */
export interface CommandContext {
  readonly id: string;
  readonly address: string;
  readonly method: string;
  /** 1 on the first delivery; more when the server delivered it again (the method still runs once here). */
  readonly attempt: number;
  readonly deadline: string | null;
  /** Aborted when the server cancels or expires the command. */
  readonly signal: AbortSignal;
}

/** A method a client exposes: called with the command's arguments; its return value is the result. */
export type CommandMethod = (this: CommandContext, ...args: never[]) => unknown;
export type Methods = Readonly<Record<string, CommandMethod>>;

/** The `data` of a `command-result` frame (and of the HTTP result, with the claimer). */
export type Outcome = Readonly<Static<typeof COMMAND_OUTCOME>>;

/** How the runner answers the server, over whichever transport. */
export interface RunnerLink {
  started(id: string): void;
  result(id: string, outcome: Outcome): void;
}

interface Entry {
  outcome: Outcome | null;
  /** `started` was sent (or is due): a redelivery while running repeats it. */
  announced: boolean;
  readonly controller: AbortController;
  /** The server recorded the outcome (or told us it needs none): nothing left to send. */
  acked: boolean;
}

/**
 * Runs delivered commands once each. Delivery is at least once: a command delivered again
 * (same id) while it runs is only announced as started again, and one already run gets its
 * remembered outcome re-sent instead of running twice.
 */
export class CommandRunner {
  private readonly exposed = new Map<string, Methods>();
  /** Insertion order is age order: the oldest answered entries are forgotten first. */
  private readonly entries = new Map<string, Entry>();
  private readonly idle = new Set<() => void>();
  private active = 0;

  constructor(
    private readonly link: RunnerLink,
    private readonly options: {
      /**
       * Report `started` only for a method still running after this long (0: at once). Over
       * long-polling each report is a request: instant methods go delivered → succeeded.
       */
      readonly startDelayMs?: number;
      /** How many answered command ids to remember for de-duplication. @default 10000 */
      readonly remember?: number;
    } = {},
  ) {}

  expose(address: string, methods: Methods): void {
    this.exposed.set(address, methods);
  }

  /** Commands running now. */
  get running(): number {
    return this.active;
  }

  /** Whether an outcome has been computed but not yet recorded by the server. */
  get unacknowledged(): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.acked) n++;
    return n;
  }

  deliver(d: CommandDelivery): void {
    const known = this.entries.get(d.id);
    if (known !== undefined) {
      if (known.outcome !== null) this.link.result(d.id, known.outcome);
      else if (known.announced) this.link.started(d.id);
      return;
    }
    const entry: Entry = { outcome: null, announced: false, controller: new AbortController(), acked: false };
    this.entries.set(d.id, entry);
    this.forget();
    const delay = this.options.startDelayMs ?? 0;
    if (delay <= 0) {
      entry.announced = true;
      this.link.started(d.id);
    } else {
      const timer = setTimeout(() => {
        if (entry.outcome !== null) return;
        entry.announced = true;
        this.link.started(d.id);
      }, delay);
      (timer as { unref?: () => void }).unref?.();
    }
    void this.run(d, entry);
  }

  /** The server cancelled or expired `id`: abort its signal. */
  cancel(id: string, reason = "cancelled"): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    e.acked = true;
    e.controller.abort(new Error(`The command was ${reason}.`));
  }

  /** The server recorded the outcome of `id` (or refused it for good). */
  acknowledged(id: string): void {
    const e = this.entries.get(id);
    if (e !== undefined && e.outcome !== null) e.acked = true;
  }

  /**
   * The server will never accept the result of `id` (too large, not JSON it accepts): the
   * outcome becomes an error saying so, sent once; an error refused in turn is given up.
   */
  refused(id: string, message: string, code: string): void {
    const e = this.entries.get(id);
    if (e === undefined || e.outcome === null) return;
    if (!("result" in e.outcome)) {
      e.acked = true;
      return;
    }
    e.outcome = { error: { message: `The result was refused: ${message}`, code } };
    this.link.result(id, e.outcome);
  }

  /** Resolves when nothing runs. */
  whenIdle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  private async run(d: CommandDelivery, entry: Entry): Promise<void> {
    this.active++;
    const ctx: CommandContext = {
      id: d.id,
      address: d.address,
      method: d.method,
      attempt: d.attempt,
      deadline: d.deadline,
      signal: entry.controller.signal,
    };
    let outcome: Outcome;
    try {
      const methods = this.exposed.get(d.address);
      const fn = methods !== undefined && Object.hasOwn(methods, d.method) ? methods[d.method] : undefined;
      if (typeof fn !== "function") {
        outcome = { error: { message: `No method ${d.method} at ${d.address}.`, code: "METHOD_NOT_FOUND" } };
      } else {
        const value = await (fn as (this: CommandContext, ...args: unknown[]) => unknown).apply(ctx, d.args);
        const result = value === undefined ? null : value;
        // A value JSON cannot carry (BigInt, a cycle) is the method's error, not the transport's.
        JSON.stringify(result);
        outcome = { result };
      }
    } catch (e) {
      outcome = { error: errorShape(e) };
    } finally {
      this.active--;
    }
    entry.outcome = outcome;
    this.link.result(d.id, outcome);
    if (this.active === 0) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
  }

  private forget(): void {
    const remember = this.options.remember ?? 10_000;
    if (this.entries.size <= remember) return;
    for (const [id, e] of this.entries) {
      if (this.entries.size <= remember) break;
      if (e.acked) this.entries.delete(id);
    }
  }
}

function errorShape(e: unknown): CommandError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const data = (e as { data?: unknown }).data;
    return {
      message: e.message || e.name,
      ...(typeof code === "string" ? { code } : {}),
      ...(data !== undefined ? { data } : {}),
    };
  }
  return { message: typeof e === "string" ? e : "The method failed." };
}
