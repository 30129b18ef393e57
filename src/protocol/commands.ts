/**
 * The command wire (docs/protocol/commands.md): how a command looks in HTTP answers and
 * in WebSocket frames, and the names of the channels that wake clients and waiters.
 * No Node imports: the client SDK shares this file (the schemas' types only, so that the
 * browser bundle holds no TypeBox).
 */
import type { Static } from "@sinclair/typebox";
import type { COMMAND_DELIVERY, COMMAND_ERROR } from "./command-bodies.js";

/** Where a command stands; succeeded, failed, expired and cancelled are final. */
export type CommandState =
  | "pending"
  | "delivered"
  | "running"
  | "succeeded"
  | "failed"
  | "expired"
  | "cancelled";

/** Why a command failed, as the client reported it (or the server, for its own refusals). */
export type CommandError = Readonly<Static<typeof COMMAND_ERROR>>;

/** The stored facts a view is made of (the store's command record has them all). */
export interface CommandFacts {
  readonly id: string;
  readonly address: string;
  readonly method: string;
  /** JSON array text of the arguments. */
  readonly args: string;
  readonly state: CommandState;
  readonly result: string | null;
  readonly error: CommandError | null;
  readonly idempotencyKey: string | null;
  readonly deadline: number | null;
  readonly attempts: number;
  readonly claimedBy: string | null;
  readonly leaseUntil: number | null;
  readonly createdAt: number;
  readonly deliveredAt: number | null;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

/** A command as the HTTP API and the CLI show it. Timestamps are ISO 8601 strings. */
export interface CommandView {
  readonly id: string;
  readonly address: string;
  readonly method: string;
  readonly args: unknown[];
  readonly state: CommandState;
  /** The client's return value once succeeded (null before, or when it returned nothing). */
  readonly result: unknown;
  readonly error: CommandError | null;
  readonly idempotency_key: string | null;
  readonly deadline: string | null;
  readonly attempts: number;
  readonly claimed_by: string | null;
  readonly lease_until: string | null;
  readonly created_at: string;
  readonly delivered_at: string | null;
  readonly started_at: string | null;
  readonly finished_at: string | null;
}

/** What a client receives to run: the `data` of a `command` frame, an item of a claim answer. */
export type CommandDelivery = Readonly<Static<typeof COMMAND_DELIVERY>>;

/** The log channel a client serving `address` is woken on. */
export function addressChannel(address: string): string {
  return `command:${address}`;
}

/** The log channel on which the outcome of one command is announced to waiters. */
export function outcomeChannel(id: string): string {
  return `command-outcome:${id}`;
}

/** Message types on those channels (each a hint: the store holds the truth). */
export const WAKE_TYPE = "command";
export const FINAL_TYPE = "command-final";
export const OUTCOME_TYPE = "command-outcome";

/** WebSocket frame types (rohrpost `type`). */
export const FRAME = {
  register: "command-register",
  unregister: "command-unregister",
  command: "command",
  cancel: "command-cancel",
  started: "command-started",
  result: "command-result",
} as const;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function parseJson(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

export function commandView(c: CommandFacts): CommandView {
  return {
    id: c.id,
    address: c.address,
    method: c.method,
    args: parseJson(c.args) as unknown[],
    state: c.state,
    result: parseJson(c.result),
    error: c.error,
    idempotency_key: c.idempotencyKey,
    deadline: iso(c.deadline),
    attempts: c.attempts,
    claimed_by: c.claimedBy,
    lease_until: iso(c.leaseUntil),
    created_at: iso(c.createdAt)!,
    delivered_at: iso(c.deliveredAt),
    started_at: iso(c.startedAt),
    finished_at: iso(c.finishedAt),
  };
}

export function commandDelivery(c: CommandFacts): CommandDelivery {
  return {
    id: c.id,
    address: c.address,
    method: c.method,
    args: parseJson(c.args) as unknown[],
    attempt: c.attempts,
    deadline: iso(c.deadline),
  };
}
