import { Type } from "@sinclair/typebox";
import { MAX_CURSOR_LENGTH } from "./tryton-bus.js";
import { CHANGE_TYPES } from "./changes.js";

/**
 * Schemas of the request bodies whose check lives elsewhere, for the API description:
 * the long-poll body is read by `parsePollBody` (./tryton-bus.ts, the hot path, without a
 * promise or a schema walk), notifications and changes by the core (src/core/notify.ts,
 * src/core/changes.ts), which embedding applications call directly.
 */

export const POLL_BODY = Type.Object({
  last_message: Type.Union([Type.String({ maxLength: MAX_CURSOR_LENGTH }), Type.Null()], {
    description: "the message_id of the last message received, or null for recent ones",
  }),
  channels: Type.Array(Type.String(), { description: "the channels to read" }),
  max_messages: Type.Optional(Type.Integer({ minimum: 1, description: "answer with up to this many messages under `messages` (an extension Tryton ignores)" })),
});

export const NOTIFY_BODY = Type.Object({
  title: Type.String({ minLength: 1, maxLength: 200, description: "one line, plain text" }),
  body: Type.Optional(Type.String({ maxLength: 4000, description: "plain text" })),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 3, default: 1, description: "0 (low) to 3 (urgent)" })),
  user: Type.Optional(Type.Union([Type.String(), Type.Integer()], { description: "the user to notify (required unless client is given)" })),
  client: Type.Optional(Type.String({ minLength: 1, description: "only this client of the user" })),
});

export const CHANGE_BODY = Type.Object({
  model: Type.String({ minLength: 1, description: "the model's name, e.g. invoice" }),
  type: Type.Union(CHANGE_TYPES.map((t) => Type.Literal(t))),
  object: Type.Record(Type.String(), Type.Unknown(), { description: "the changed object, serialised by the caller; it has an id" }),
  updated_fields: Type.Optional(Type.Array(Type.String())),
  groups: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: "the channels to announce it on, instead of the model's" })),
});

export const CHANGES_BODY = Type.Union([CHANGE_BODY, Type.Object({ changes: Type.Array(CHANGE_BODY, { minItems: 1, description: "published atomically, in order" }) })]);
