import type { AppendEntry } from "../stores/store.js";
import { TidingsError } from "../errors.js";
import { validateChannel } from "./channels.js";

export type JsonObject = { [key: string]: unknown };

const MAX_TYPE_LENGTH = 100;

export function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Turns what a publisher sent into what the store appends: a JSON object with a string
 * `type`, without any `message_id` (the bus assigns it), serialised once and size-checked.
 */
export function toAppendEntry(channel: unknown, message: unknown, maxBytes: number): AppendEntry {
  const ch = validateChannel(channel);
  if (!isPlainObject(message)) {
    throw new TidingsError("TIDINGS_ERR_MESSAGE_INVALID", "A message must be a JSON object.");
  }
  const type = message.type;
  if (typeof type !== "string" || type.length === 0 || type.length > MAX_TYPE_LENGTH) {
    throw new TidingsError(
      "TIDINGS_ERR_MESSAGE_INVALID",
      `A message needs a "type": a string of 1 to ${MAX_TYPE_LENGTH} characters.`,
    );
  }
  let payload: string;
  try {
    if ("message_id" in message) {
      const { message_id: _ignored, ...rest } = message;
      payload = JSON.stringify(rest);
    } else {
      payload = JSON.stringify(message);
    }
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_MESSAGE_INVALID", "The message cannot be serialised as JSON.", { cause });
  }
  if (Buffer.byteLength(payload) > maxBytes) {
    throw new TidingsError("TIDINGS_ERR_MESSAGE_TOO_LARGE", `A message may have at most ${maxBytes} bytes of JSON.`, {
      details: { maxBytes },
    });
  }
  return { channel: ch, type, payload };
}

/** One message to publish: its channel and the message (validated by toAppendEntry). */
export interface PublishItem {
  readonly channel: string;
  readonly message: unknown;
}
