import type { TSchema } from "@sinclair/typebox";
import {
  BUILTIN_FRAMES,
  ERROR_FRAME,
  REPLY_FRAME,
  REQUEST_FRAME,
  SERVER_FRAMES,
} from "../../protocol/rohrpost-frames.js";
import { GAP_EVENT_DATA, MESSAGE_EVENT_DATA } from "../../protocol/sse-events.js";
import { CLOSE } from "../websocket/close-codes.js";
import { jsonSchema, VERSION } from "./openapi.js";

/**
 * The AsyncAPI 3.0 document of the WebSocket (rohrpost) and SSE wires, served at
 * `GET /asyncapi.json`: generated from the frame schemas of src/protocol/rohrpost-frames.ts
 * and sse-events.ts, the very ones the code takes its frame types from. Operations are
 * the server's view: it `receive`s requests (and answers them) and `send`s pushes.
 */

const WS = "websocket";
const SSE = "events";

interface Message {
  readonly name: string;
  readonly schema: TSchema;
  /** The SSE event name, or what stands for a frame's `type` when its schema has no constant. */
  readonly title?: string;
}

/** A frame's rohrpost `type`, when its schema fixes it. */
function frameType(schema: Record<string, unknown>): string | undefined {
  const type = (schema.properties as { type?: { const?: unknown } } | undefined)?.type?.const;
  return typeof type === "string" ? type : undefined;
}

const capital = (s: string): string => s[0]!.toUpperCase() + s.slice(1);
const ref = (path: string): { $ref: string } => ({ $ref: `#/${path}` });

function closeCodeTable(): string {
  const rows = Object.values(CLOSE).map((c) => `| ${c.code} | \`${c.reason}\` | ${c.meaning} |`);
  return ["| Close code | Reason | Meaning |", "|---|---|---|", ...rows].join("\n");
}

export function asyncApiDocument(): Record<string, unknown> {
  const wsMessages: Message[] = [
    ...BUILTIN_FRAMES.flatMap((f) => [
      { name: f.name, schema: f.request },
      { name: `${f.name}Reply`, schema: f.reply },
    ]),
    { name: "request", schema: REQUEST_FRAME, title: "<application type>" },
    { name: "reply", schema: REPLY_FRAME, title: "<application type>" },
    { name: "error", schema: ERROR_FRAME, title: "<request type>" },
    ...SERVER_FRAMES,
  ];
  const sseMessages: Message[] = [
    { name: "messageEvent", schema: MESSAGE_EVENT_DATA, title: "message" },
    { name: "gapEvent", schema: GAP_EVENT_DATA, title: "gap" },
  ];

  const schemas: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const m of [...wsMessages, ...sseMessages]) {
    const schema = jsonSchema(m.schema);
    schemas[capital(m.name)] = schema;
    messages[m.name] = {
      name: m.name,
      title: m.title ?? frameType(schema) ?? m.name,
      ...(typeof schema.description === "string" ? { summary: schema.description } : {}),
      payload: ref(`components/schemas/${capital(m.name)}`),
    };
  }
  const channelMessages = (list: readonly Message[]) => Object.fromEntries(list.map((m) => [m.name, ref(`components/messages/${m.name}`)]));
  const inChannel = (channel: string, name: string) => ref(`channels/${channel}/messages/${name}`);

  const operations: Record<string, unknown> = {};
  const answered = (name: string, summary: string, replies: readonly string[]) => {
    operations[name] = {
      action: "receive",
      channel: ref(`channels/${WS}`),
      summary,
      messages: [inChannel(WS, name)],
      reply: { channel: ref(`channels/${WS}`), messages: [...replies, "error"].map((r) => inChannel(WS, r)) },
    };
  };
  for (const f of BUILTIN_FRAMES) answered(f.name, `\`${f.type}\`: ${(jsonSchema(f.request).description as string | undefined) ?? ""}`, [`${f.name}Reply`]);
  answered("request", "A request to a handler the application registered (`server.bus.handle`).", ["reply"]);
  operations.error = { action: "send", channel: ref(`channels/${WS}`), summary: "A frame that is not a request, or names no handler.", messages: [inChannel(WS, "error")] };
  const sent = (channel: string, m: Message) => {
    operations[m.name] = { action: "send", channel: ref(`channels/${channel}`), summary: jsonSchema(m.schema).description, messages: [inChannel(channel, m.name)] };
  };
  for (const m of SERVER_FRAMES) sent(WS, m);
  for (const m of sseMessages) sent(SSE, m);

  const db = { description: "the database" };
  return {
    asyncapi: "3.0.0",
    info: {
      title: "tidings",
      version: VERSION,
      description:
        "The WebSocket (rohrpost) and Server-Sent Events wires of tidings; the HTTP API is at /openapi.json. " +
        "Told in docs/protocol/websocket.md, docs/protocol/sse.md and docs/protocol/commands.md.",
    },
    defaultContentType: "application/json",
    channels: {
      [WS]: {
        address: "/{db}/ws",
        title: "WebSocket: the rohrpost wire",
        description:
          "One JSON object per text frame, in both directions. Credentials: `Authorization` (Bearer or Tryton Session), " +
          "the session cookie, `?token=`, or the `auth` request.\n\n" +
          closeCodeTable(),
        parameters: { db },
        messages: channelMessages(wsMessages),
        bindings: { ws: { method: "GET", bindingVersion: "0.1.0" } },
        "x-tidings-close-codes": Object.values(CLOSE).map(({ code, reason, meaning }) => ({ code, reason, meaning })),
      },
      [SSE]: {
        address: "/{db}/events",
        title: "Server-Sent Events",
        description:
          "`GET /{db}/events?channels=a,b` (also `channel=`, `last_message=`, `token=`) answered by `text/event-stream`. " +
          "The stream starts with `retry: <ms>`; a comment `: keep-alive` comes every sseKeepAliveMs. " +
          "Each message's `data` is one JSON object (the payloads below); a message event's `id` is its message_id.",
        parameters: { db },
        messages: channelMessages(sseMessages),
      },
    },
    operations,
    components: { schemas, messages },
  };
}
