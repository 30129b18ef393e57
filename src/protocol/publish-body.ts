import { Type, type Static } from "@sinclair/typebox";
import { parseWire } from "./validate.js";

/**
 * The publish body, the same on HTTP (`POST /<db>/publish`) and the WebSocket (`publish`):
 * `{"channel", "message"}` or `{"messages": [{"channel", "message"}, ..]}`. Each error names
 * the field that is wrong; the message itself (its `type`, size) is checked by the core.
 */
const SHAPE = '{"channel": "...", "message": {"type": "...", ...}} or {"messages": [{"channel", "message"}, ..]}';

export const PUBLISH_ENTRY = Type.Object(
  {
    channel: Type.String({ description: "the channel, e.g. `invoice:42`", errorCode: "TIDINGS_ERR_CHANNEL_INVALID" }),
    message: Type.Unknown({ description: 'a JSON object with a string `type`: `{"type": "refresh", ...}`' }),
  },
  { errorMessage: `must be a JSON object: ${SHAPE}.`, requiredMessage: `send ${SHAPE}.` },
);

export const PUBLISH_BATCH = Type.Object({
  messages: Type.Array(PUBLISH_ENTRY, {
    minItems: 1,
    description: "published atomically, in this order",
    errorMessage: "must be a non-empty list of {channel, message}.",
  }),
});

export const PUBLISH_BODY = Type.Union([PUBLISH_ENTRY, PUBLISH_BATCH], {
  description: "one message, or several published atomically",
  errorMessage: `must be a JSON object: ${SHAPE}.`,
});

export type PublishEntry = Static<typeof PUBLISH_ENTRY>;

export type PublishBody = { readonly one: PublishEntry } | { readonly many: readonly PublishEntry[] };

/**
 * `subject` is what the sentences call the whole: "The body" (HTTP), "The publish data"
 * (WebSocket). The key `messages` tells the two forms apart, so that errors speak of the
 * form meant (and `{"channel", "message", "messages": "x"}` is a bad batch, not a message).
 */
export function parsePublishBody(body: unknown, subject = "The body"): PublishBody {
  const batch = typeof body === "object" && body !== null && !Array.isArray(body) && (body as { messages?: unknown }).messages !== undefined;
  if (batch) return { many: parseWire(PUBLISH_BATCH, body, subject).messages };
  return { one: parseWire(PUBLISH_ENTRY, body, subject) };
}
