import { Type } from "@sinclair/typebox";
import { LOG_MESSAGE } from "./rohrpost-frames.js";

/**
 * The `data` of the events of `GET /<db>/events` (./sse.ts writes them, docs/protocol/sse.md
 * tells them), as schemas for the AsyncAPI document at `GET /asyncapi.json`.
 */

/** An event without a name (EventSource's `message`), whose `id` is the message_id. */
export const MESSAGE_EVENT_DATA = Type.Object(
  { channel: Type.String(), message: LOG_MESSAGE },
  { description: "the shape of a Tryton long-poll answer; the event's `id` is the message_id, sent back as `Last-Event-ID`" },
);

/** `event: gap`, before the messages that follow a cursor older than retention or unknown. */
export const GAP_EVENT_DATA = Type.Object(
  { channels: Type.Array(Type.String(), { description: "the channels of the stream" }) },
  { description: "messages were lost: reload; the event has no `id`" },
);
