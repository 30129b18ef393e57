import { TidingsError } from "../errors.js";
import { isPlainObject } from "../core/messages.js";
import type { CommandError, CommandOutcome } from "../stores/store.js";
import { ADDRESS, METHOD } from "../protocol/command-bodies.js";

const MAX_KEY_LENGTH = 200;
const CONTROL = /[\u0000-\u001f\u007f]/;

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", message, details ? { details } : undefined);
}

export function validateAddress(address: unknown): string {
  if (typeof address !== "string" || !ADDRESS.test(address)) {
    throw new TidingsError(
      "TIDINGS_ERR_ADDRESS_INVALID",
      "An address must be 1 to 200 of A-Z a-z 0-9 _ . : - (e.g. software_dev.buildbot:5).",
    );
  }
  return address;
}

export function validateMethod(method: unknown): string {
  if (typeof method !== "string" || !METHOD.test(method)) {
    invalid("method must be an identifier of 1 to 100 characters (A-Z a-z 0-9 _ $ . : -, not starting with a digit).");
  }
  return method;
}

export function validateIdempotencyKey(key: unknown): string | null {
  if (key === undefined || key === null) return null;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH || CONTROL.test(key)) {
    invalid(`idempotency_key must be a string of 1 to ${MAX_KEY_LENGTH} characters without control characters.`);
  }
  return key;
}

/** Serialises the arguments once, size-checked: they are stored and sent as this text. */
export function encodeArgs(args: unknown, maxBytes: number): string {
  if (args === undefined) return "[]";
  if (!Array.isArray(args)) invalid("args must be a JSON array.");
  let text: string;
  try {
    text = JSON.stringify(args);
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", "args cannot be serialised as JSON.", { cause });
  }
  if (byteLength(text) > maxBytes) {
    throw new TidingsError("TIDINGS_ERR_COMMAND_TOO_LARGE", `A command's args may have at most ${maxBytes} bytes of JSON.`, {
      details: { maxBytes },
    });
  }
  return text;
}

/**
 * The absolute deadline: `deadline` (a Date, ms since the epoch or an ISO string) or
 * `timeoutMs` from now, else the default. A deadline in the past is refused.
 */
export function resolveDeadline(
  input: { deadline?: unknown; timeoutMs?: unknown },
  now: number,
  defaultMs: number,
): number {
  const { deadline, timeoutMs } = input;
  if (deadline !== undefined && deadline !== null && timeoutMs !== undefined && timeoutMs !== null) {
    invalid("Give either a deadline or a timeout, not both.");
  }
  let at: number;
  if (timeoutMs !== undefined && timeoutMs !== null) {
    if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      invalid("timeout must be a positive number.");
    }
    at = now + timeoutMs;
  } else if (deadline instanceof Date) {
    at = deadline.getTime();
  } else if (typeof deadline === "number") {
    at = deadline;
  } else if (typeof deadline === "string") {
    at = Date.parse(deadline);
  } else if (deadline === undefined || deadline === null) {
    at = now + defaultMs;
  } else {
    invalid("deadline must be an ISO 8601 date or milliseconds since the epoch.");
  }
  if (!Number.isFinite(at)) invalid("deadline must be an ISO 8601 date or milliseconds since the epoch.");
  if (at <= now) invalid("The deadline has already passed.");
  return Math.floor(at);
}

/**
 * A client's answer: `{"result": <any JSON>}` or `{"error": {"message", "code"?, "data"?}}`,
 * exactly one of them, size-checked.
 */
export function parseOutcome(body: unknown, maxBytes: number): CommandOutcome {
  if (!isPlainObject(body)) invalid('A result must be an object {"result": …} or {"error": {"message": …}}.');
  const hasResult = Object.hasOwn(body, "result");
  const hasError = Object.hasOwn(body, "error") && body.error !== null && body.error !== undefined;
  if (hasResult === hasError) invalid('A result must have exactly one of "result" and "error".');
  let outcome: CommandOutcome;
  if (hasResult) {
    let text: string | undefined;
    try {
      text = JSON.stringify(body.result);
    } catch (cause) {
      throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", "The result cannot be serialised as JSON.", { cause });
    }
    outcome = { state: "succeeded", result: text ?? "null" };
    checkSize(outcome.result, maxBytes);
  } else {
    const e = body.error;
    if (!isPlainObject(e) || typeof e.message !== "string") invalid('error must be an object with a string "message".');
    if (e.code !== undefined && typeof e.code !== "string") invalid("error.code must be a string.");
    const error: CommandError = {
      message: e.message,
      ...(e.code !== undefined ? { code: e.code as string } : {}),
      ...(e.data !== undefined ? { data: e.data } : {}),
    };
    checkSize(JSON.stringify(error), maxBytes);
    outcome = { state: "failed", error };
  }
  return outcome;
}

function checkSize(text: string, maxBytes: number): void {
  if (byteLength(text) > maxBytes) {
    throw new TidingsError("TIDINGS_ERR_COMMAND_TOO_LARGE", `A command's result may have at most ${maxBytes} bytes of JSON.`, {
      details: { maxBytes },
    });
  }
}

function byteLength(text: string): number {
  return Buffer.byteLength(text);
}
