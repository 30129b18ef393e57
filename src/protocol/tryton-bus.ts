/**
 * The Tryton bus wire (DESIGN 5.1): `POST /<db>/bus` with
 * `{"last_message": <id|null>, "channels": [..], "max_messages"?: n}` answered by
 * `{"channel": <channel|null>, "message": <object|null>}`. Extensions live in other keys,
 * which Tryton clients ignore: `messages` (the batch, with `max_messages`) and `gap`.
 * No Node imports: the client SDK shares this file.
 */

/** Longer than any id an engine hands out. */
export const MAX_CURSOR_LENGTH = 256;

export interface PollBody {
  readonly lastMessage: string | null;
  readonly channels: readonly unknown[];
  /** Null when the client did not opt in to batches (Tryton: one message per answer). */
  readonly maxMessages: number | null;
}

export interface WireMessage {
  readonly channel: string;
  /** The message's JSON text, `message_id` included. */
  readonly json: string;
}

export type PollBodyError =
  | { readonly kind: "not-object" }
  | { readonly kind: "channels" }
  | { readonly kind: "last_message" }
  | { readonly kind: "last_message_length" }
  | { readonly kind: "max_messages" };

/** Validates the shape of a poll body; channel names themselves are checked by the core. */
export function parsePollBody(body: unknown, maxBatch: number): PollBody | PollBodyError {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { kind: "not-object" };
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.channels)) return { kind: "channels" };
  const last = b.last_message;
  if (last !== undefined && last !== null && typeof last !== "string") return { kind: "last_message" };
  // Ids are short; a huge "cursor" is a malformed request, not an unknown position.
  if (typeof last === "string" && last.length > MAX_CURSOR_LENGTH) return { kind: "last_message_length" };
  let maxMessages: number | null = null;
  if (b.max_messages !== undefined && b.max_messages !== null) {
    const n = b.max_messages;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > maxBatch) return { kind: "max_messages" };
    maxMessages = n;
  }
  return { lastMessage: typeof last === "string" ? last : null, channels: b.channels, maxMessages };
}

/**
 * Tryton's own answer (one message, no extension) by message, built once: a broadcast is
 * answered to every client with the same text. Entries go with the messages.
 */
const singleAnswers = new WeakMap<WireMessage, string>();

/** The answer to a poll, built from stored JSON text without re-encoding the messages. */
export function pollResponse(messages: readonly WireMessage[], gap: boolean, batch: boolean): string {
  const first = messages[0];
  if (first !== undefined && messages.length === 1 && !gap && !batch) {
    let text = singleAnswers.get(first);
    if (text === undefined) {
      text = `{"channel":${JSON.stringify(first.channel)},"message":${first.json}}`;
      singleAnswers.set(first, text);
    }
    return text;
  }
  let out =
    first === undefined
      ? '{"channel":null,"message":null'
      : `{"channel":${JSON.stringify(first.channel)},"message":${first.json}`;
  if (batch) {
    out += ',"messages":[';
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (i > 0) out += ",";
      out += `{"channel":${JSON.stringify(m.channel)},"message":${m.json}}`;
    }
    out += "]";
  }
  if (gap) out += ',"gap":true';
  return `${out}}`;
}
