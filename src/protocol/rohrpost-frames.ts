import { Type, type Static, type TSchema } from "@sinclair/typebox";
// Not ./rohrpost.ts, whose types come from here: a push's type is the change message type.
import { CHANGE_MESSAGE_TYPE as PUSH_TYPE, CHANGE_TYPES, type ChangeData } from "./changes.js";
import { FRAME } from "./commands.js";
import { PUBLISH_BODY } from "./publish-body.js";
import { ADDRESS_FIELD, COMMAND_DELIVERY, COMMAND_ERROR } from "./command-bodies.js";

/**
 * The frames of the WebSocket wire (docs/protocol/websocket.md) as schemas: what the
 * AsyncAPI document at `GET /asyncapi.json` is generated from, and where the frame types of
 * the code come from (`Static<>`). The SDK imports these types only (no TypeBox in the
 * browser bundle); the server's parsers stay hand-written for speed and rohrpost's own texts.
 */

/** A request's id: any JSON scalar, echoed untouched. */
export const REQUEST_ID = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], {
  description: "any JSON scalar, echoed untouched in the answer",
});

const MESSAGE_ID = Type.String({ description: "a `message_id`: the cursor to resume after" });

/** A message as the log hands it out: as published, with its `message_id` first. */
export const LOG_MESSAGE = Type.Object(
  { message_id: MESSAGE_ID, type: Type.String({ description: "the message's type, as published" }) },
  { description: "the message as published (any further keys passed through untouched), `message_id` first" },
);

/** A frame from the client: `{id, type, data?, auth_jwt?}`. */
function request(type: string, data: TSchema | undefined, description: string): TSchema {
  return Type.Object(
    {
      id: REQUEST_ID,
      type: Type.Literal(type),
      ...(data !== undefined ? { data } : {}),
      auth_jwt: Type.Optional(Type.String({ description: "a token that authenticates this request and the connection from then on" })),
    },
    { description },
  );
}

/** The answer to a request: its `id` and `type` echoed. */
function reply(type: string, data: TSchema | undefined, description: string): TSchema {
  return Type.Object({ id: REQUEST_ID, type: Type.Literal(type), ...(data !== undefined ? { data } : {}) }, { description });
}

/** Any request, as the server parses it (src/protocol/rohrpost.ts `parseRequest`). */
export const REQUEST_FRAME = Type.Object(
  {
    id: REQUEST_ID,
    type: Type.String({ minLength: 1, description: "the handler: a built-in or one the application registered" }),
    data: Type.Optional(Type.Unknown({ description: "handed to the handler" })),
    auth_jwt: Type.Optional(Type.String({ description: "a token that authenticates this request and the connection from then on" })),
  },
  { description: "a request; every request gets exactly one answer echoing `id` and `type`" },
);

/** The answer to an application's request, and any frame an application handler sends. */
export const REPLY_FRAME = Type.Object(
  {
    id: Type.Optional(REQUEST_ID),
    type: Type.String({ minLength: 1 }),
    data: Type.Optional(Type.Unknown({ description: "what the handler returned; absent when it returned nothing" })),
  },
  { description: "an answer echoing the request's `id` and `type`, or a frame a handler sent with `ctx.send`" },
);

/** A failure: `error` for people, `data.code` from docs/errors.md, details beside it. */
export const ERROR_FRAME = Type.Object(
  {
    id: Type.Optional(REQUEST_ID),
    type: Type.Optional(Type.String({ description: "the request's type, when it had a usable one" })),
    error: Type.String({ description: "a sentence for people" }),
    data: Type.Object({ code: Type.String({ pattern: "^TIDINGS_ERR_[A-Z_]+$", description: "listed in docs/errors.md" }) }, {
      description: "the code and its details (e.g. `channel`, `max`)",
    }),
  },
  { description: "the answer to a request that failed, or to a frame that is not a request" },
);

export const PING = request("ping", Type.Optional(Type.Unknown({ description: "echoed as it came" })), "answered at once with `pong`");
export const PONG = reply("pong", Type.Optional(Type.Unknown({ description: "the ping's data; absent when it had none" })), "the answer to `ping`");

export const AUTH_DATA = Type.Union(
  [
    Type.Object({ token: Type.String({ description: "a JWT" }) }),
    Type.String({ description: "a JWT" }),
    Type.Object({ session: Type.String({ description: "Tryton's base64 `login:user_id:key`" }) }),
  ],
  { description: "a token, or a Tryton session" },
);
export const AUTH_REPLY_DATA = Type.Object({
  user: Type.String({ description: "who the connection now is" }),
  role: Type.Union([Type.Literal("subscriber"), Type.Literal("publisher"), Type.Literal("admin")]),
  expires_at: Type.Union([Type.Number(), Type.Null()], { description: "milliseconds since the epoch; null for Tryton sessions" }),
  unsubscribed: Type.Optional(Type.Array(Type.String(), { description: "channels the new credentials no longer grant" })),
});
export const AUTH = request("auth", AUTH_DATA, "authenticate the connection");
export const AUTH_REPLY = reply("auth", AUTH_REPLY_DATA, "who the connection now is");

const LAST_MESSAGE = Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "the cursor: a `message_id`, or null" }));
export const SUBSCRIPTION_DATA = Type.Union(
  [
    Type.Object({ channels: Type.Array(Type.String(), { description: "1 to `maxChannels` channels" }), last_message: LAST_MESSAGE }),
    Type.Object(
      { type: Type.String({ minLength: 1 }), id: Type.Union([Type.String(), Type.Number()]), last_message: LAST_MESSAGE },
      { description: "rohrpost-js's group object: the channel `<type>-<id>`" },
    ),
  ],
  { description: "a list of channels, or a group" },
);
const GAP_FLAG = Type.Optional(Type.Literal(true, { description: "the cursor was older than retention, of another epoch, or unknown: reload" }));
export const SUBSCRIPTION_REPLY_DATA = Type.Union([
  Type.Object({ channels: Type.Array(Type.String()), gap: GAP_FLAG }),
  Type.Object({ group: Type.String(), gap: GAP_FLAG }),
]);
export const SUBSCRIBE = request("subscribe", SUBSCRIPTION_DATA, "subscribe to channels, resuming after `last_message`");
export const SUBSCRIBE_REPLY = reply("subscribe", SUBSCRIPTION_REPLY_DATA, "sent after the first read of the log, before any push of the subscription");
export const UNSUBSCRIBE = request("unsubscribe", SUBSCRIPTION_DATA, "stop the pushes of channels (`last_message` is ignored)");
export const UNSUBSCRIBE_REPLY = reply("unsubscribe", SUBSCRIPTION_REPLY_DATA, "no push of those channels follows");

export const PUBLISH_REPLY_DATA = Type.Union([
  Type.Object({ message_id: MESSAGE_ID }),
  Type.Object({ message_ids: Type.Array(MESSAGE_ID, { description: "in the order of `messages`" }) }),
]);
export const PUBLISH = request("publish", PUBLISH_BODY, "publish, as `POST /<db>/publish` (publisher and admin roles)");
export const PUBLISH_REPLY = reply("publish", PUBLISH_REPLY_DATA, "the message_id of each message");

const GAP_AFTER = Type.Optional(Type.Literal(true, { description: "the first push after a gap found while catching up" }));

/** A message on a subscribed channel. */
export const MESSAGE_PUSH = Type.Object(
  {
    type: Type.Literal(PUSH_TYPE),
    id: MESSAGE_ID,
    data: Type.Object({ group: Type.String({ description: "the channel" }), message: LOG_MESSAGE, gap: GAP_AFTER }),
  },
  { description: "a message on a subscribed channel, in log order, each once" },
);

/** The data of a model change, as rohrpost's NotifyOnCreate/Update/Delete mixins send it. */
export const CHANGE_DATA = Type.Object({
  type: Type.Union(CHANGE_TYPES.map((t) => Type.Literal(t))),
  group: Type.String({ description: "the channel" }),
  object: Type.Record(Type.String(), Type.Unknown(), { description: "the changed object" }),
});

// ./changes.ts sits below this file (the SDK bundles it), so its ChangeData cannot come
// from the schema: the compiler holds the two equal instead.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
true satisfies Same<Static<typeof CHANGE_DATA>, ChangeData>;

/** A model change (a message of type `subscription-update`, docs/changes.md). */
export const CHANGE_PUSH = Type.Object(
  {
    type: Type.Literal(PUSH_TYPE),
    id: MESSAGE_ID,
    data: Type.Composite([
      CHANGE_DATA,
      Type.Object({
        message: Type.Object({ message_id: MESSAGE_ID, type: Type.Literal(PUSH_TYPE), data: CHANGE_DATA }, { description: "the whole message, as in every push" }),
        gap: GAP_AFTER,
      }),
    ]),
  },
  { description: "a model change: rohrpost's `data.type/group/object`, and the whole message under `data.message`" },
);

/** A gap with no message after it to carry `gap: true`. */
export const GAP_PUSH = Type.Object(
  { type: Type.Literal(PUSH_TYPE), id: Type.Null(), data: Type.Object({ group: Type.String(), gap: Type.Literal(true) }) },
  { description: "a gap found while live, or with no message after it: reload the channel's state" },
);

const COMMAND_ID = Type.String({ minLength: 1, maxLength: 100, description: "the command id" });
const ADDRESS_DATA = Type.Object({ address: ADDRESS_FIELD });
const STATE = (description: string) => Type.Object({ state: Type.String({ description }) });

export const COMMAND_REGISTER = request(FRAME.register, ADDRESS_DATA, "serve commands to an address the token allows");
export const COMMAND_REGISTER_REPLY = reply(FRAME.register, ADDRESS_DATA, "registered; pending commands follow");
export const COMMAND_UNREGISTER = request(FRAME.unregister, ADDRESS_DATA, "stop new deliveries for an address");
export const COMMAND_UNREGISTER_REPLY = reply(FRAME.unregister, ADDRESS_DATA, "what is held keeps running");
export const COMMAND = Type.Object(
  { id: Type.String({ description: "the command id" }), type: Type.Literal(FRAME.command), data: COMMAND_DELIVERY },
  { description: "a command for a registered address" },
);
export const COMMAND_CANCEL = Type.Object(
  { id: Type.String({ description: "the command id" }), type: Type.Literal(FRAME.cancel), data: STATE("`cancelled` or `expired`") },
  { description: "a held command was cancelled or expired: stop, an answer is refused" },
);
export const COMMAND_STARTED = Type.Object(
  { id: COMMAND_ID, type: Type.Literal(FRAME.started), data: Type.Optional(Type.Unknown()), auth_jwt: Type.Optional(Type.String()) },
  { description: "the client started running the command (optional)" },
);
export const COMMAND_STARTED_REPLY = reply(FRAME.started, STATE("`running`"), "the command's state");
/** The `data` of `command-result`: how the method ended. */
export const COMMAND_OUTCOME = Type.Union(
  [Type.Object({ result: Type.Unknown({ description: "the method's return value" }) }), Type.Object({ error: COMMAND_ERROR })],
  { description: "exactly one of `result` and `error`" },
);

export const COMMAND_RESULT = Type.Object(
  {
    id: COMMAND_ID,
    type: Type.Literal(FRAME.result),
    data: COMMAND_OUTCOME,
    auth_jwt: Type.Optional(Type.String()),
  },
  { description: "the command's outcome" },
);
export const COMMAND_RESULT_REPLY = reply(FRAME.result, STATE("`succeeded` or `failed`"), "the command's final state");

/** A request the server answers, with its answer: one entry per type the server registers. */
export interface RequestFrames {
  readonly type: string;
  readonly name: string;
  readonly request: TSchema;
  readonly reply: TSchema;
}

export const BUILTIN_FRAMES: readonly RequestFrames[] = [
  { type: "ping", name: "ping", request: PING, reply: PONG },
  { type: "auth", name: "auth", request: AUTH, reply: AUTH_REPLY },
  { type: "subscribe", name: "subscribe", request: SUBSCRIBE, reply: SUBSCRIBE_REPLY },
  { type: "unsubscribe", name: "unsubscribe", request: UNSUBSCRIBE, reply: UNSUBSCRIBE_REPLY },
  { type: "publish", name: "publish", request: PUBLISH, reply: PUBLISH_REPLY },
  { type: FRAME.register, name: "commandRegister", request: COMMAND_REGISTER, reply: COMMAND_REGISTER_REPLY },
  { type: FRAME.unregister, name: "commandUnregister", request: COMMAND_UNREGISTER, reply: COMMAND_UNREGISTER_REPLY },
  { type: FRAME.started, name: "commandStarted", request: COMMAND_STARTED, reply: COMMAND_STARTED_REPLY },
  { type: FRAME.result, name: "commandResult", request: COMMAND_RESULT, reply: COMMAND_RESULT_REPLY },
];

/** Frames the server sends on its own. */
export const SERVER_FRAMES: readonly { readonly name: string; readonly schema: TSchema }[] = [
  { name: "messagePush", schema: MESSAGE_PUSH },
  { name: "changePush", schema: CHANGE_PUSH },
  { name: "gapPush", schema: GAP_PUSH },
  { name: "command", schema: COMMAND },
  { name: "commandCancel", schema: COMMAND_CANCEL },
];

