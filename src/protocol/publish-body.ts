import { TidingsError } from "./errors.js";

/**
 * The publish body, the same on HTTP (`POST /<db>/publish`) and the WebSocket (`publish`):
 * `{"channel", "message"}` or `{"messages": [{"channel", "message"}, ..]}`. Each error names
 * the field that is wrong; the message itself (its `type`, size) is checked by the core.
 */
export interface PublishEntry {
  readonly channel: string;
  readonly message: unknown;
}

export type PublishBody = { readonly one: PublishEntry } | { readonly many: readonly PublishEntry[] };

const SHAPE = '{"channel": "...", "message": {"type": "...", ...}} or {"messages": [{"channel", "message"}, ..]}';

function invalid(message: string): never {
  throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `where` names the object in the sentence: "The body", "messages[2]". */
function entry(value: unknown, where: string): PublishEntry {
  if (!isObject(value)) invalid(`${where} must be a JSON object: ${SHAPE}.`);
  const missing = ["channel", "message"].filter((k) => value[k] === undefined);
  if (missing.length > 0) {
    const fields = missing.map((k) => `"${k}"`).join(" and ");
    invalid(`${where} has no ${fields} field${missing.length > 1 ? "s" : ""}: send ${SHAPE}.`);
  }
  return { channel: value.channel as string, message: value.message };
}

/** `name` is what the sentences call the whole: "The body" (HTTP), "The publish data" (WebSocket). */
export function parsePublishBody(body: unknown, name = "The body"): PublishBody {
  if (!isObject(body) || body.messages === undefined) return { one: entry(body, name) };
  if (!Array.isArray(body.messages) || body.messages.length === 0) invalid("messages must be a non-empty list of {channel, message}.");
  return { many: body.messages.map((m: unknown, i: number) => entry(m, `messages[${i}]`)) };
}
