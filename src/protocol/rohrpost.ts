/**
 * The rohrpost wire (DESIGN 5.2, seed 002): one JSON object per WebSocket text frame,
 * `{"id": <scalar>, "type": "<handler>", "data": <any>}`. Replies echo `id` and `type`;
 * failures carry `error` (a string) and `data.code` (a stable TIDINGS_ERR_… code).
 * No Node imports: the client SDK shares this file.
 */

import type { Static } from "@sinclair/typebox";
import { CHANGE_MESSAGE_TYPE, changePushData } from "./changes.js";
import type { REQUEST_ID, SUBSCRIPTION_REPLY_DATA } from "./rohrpost-frames.js";

/** A request's id: any JSON scalar, echoed untouched. The frames' schemas: ./rohrpost-frames.ts. */
export type RequestId = Static<typeof REQUEST_ID>;

/** The answer to `subscribe` and `unsubscribe`: the channels, or the group, and whether a gap was found. */
export type SubscriptionReply = Static<typeof SUBSCRIPTION_REPLY_DATA>;

export interface RohrpostRequest {
  readonly id: RequestId;
  readonly type: string;
  /** `undefined` when the frame had no `data` key. */
  readonly data: unknown;
  readonly hasData: boolean;
  /** rohrpost-js sends the client's token with every request (an empty string when it has none). */
  readonly authJwt: string | null;
}

export type FrameErrorKind = "empty" | "json" | "not-object" | "type" | "id";

/** Why a frame is not a request, with rohrpost's own error text and what of id/type it had. */
export interface FrameError {
  readonly kind: FrameErrorKind;
  readonly error: string;
  readonly id?: RequestId;
  readonly type?: string;
}

/** Messages pushed to a subscribed channel have this type (rohrpost-js routes them by `data.group`). */
export const PUSH_TYPE = "subscription-update";

/** Handlers the server answers itself; applications cannot register these names. */
export const BUILTIN_TYPES = ["ping", "auth", "subscribe", "unsubscribe", "publish"] as const;

function isScalar(v: unknown): v is RequestId {
  return v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses a text frame. The checks and their texts follow rohrpost's `handle_rohrpost_message`:
 * empty, not JSON, not an object, then the required fields in the order `type`, `id`.
 */
export function parseRequest(text: string): RohrpostRequest | FrameError {
  if (text.length === 0) return { kind: "empty", error: "Received empty message." };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { kind: "json", error: `Could not decode JSON message. Error: ${(e as Error).message}` };
  }
  if (!isObject(value)) return { kind: "not-object", error: "Expected a JSON object as message." };
  const id = isScalar(value.id) ? value.id : undefined;
  const type = typeof value.type === "string" && value.type.length > 0 ? value.type : undefined;
  const echo = { ...(id !== undefined ? { id } : {}), ...(type !== undefined ? { type } : {}) };
  if (!("type" in value)) return { kind: "type", error: "Missing required field 'type'.", ...echo };
  if (type === undefined) return { kind: "type", error: "The field 'type' must be a non-empty string.", ...echo };
  if (!("id" in value)) return { kind: "id", error: "Missing required field 'id'.", ...echo };
  if (id === undefined) return { kind: "id", error: "The field 'id' must be a string, a number, a boolean or null.", ...echo };
  const authJwt = typeof value.auth_jwt === "string" && value.auth_jwt.length > 0 ? value.auth_jwt : null;
  return { id, type, data: value.data, hasData: "data" in value, authJwt };
}

export function isFrameError(v: RohrpostRequest | FrameError): v is FrameError {
  return "kind" in v;
}

/** `{"id", "type", "data"?}`: a reply, or any frame the server sends on its own. */
export function encodeFrame(type: string, id: unknown, data?: unknown): string {
  return JSON.stringify({ id, type, data });
}

/** `{"id"?, "type"?, "error", "data": {"code", ...details}}`; id and type only when known. */
export function encodeError(
  to: { readonly id?: unknown; readonly type?: string },
  error: string,
  code: string,
  details?: Readonly<Record<string, unknown>>,
): string {
  return JSON.stringify({
    ...("id" in to && to.id !== undefined ? { id: to.id } : {}),
    ...(to.type !== undefined ? { type: to.type } : {}),
    error,
    data: { code, ...(details ?? {}) },
  });
}

/**
 * A message pushed to a subscribed channel, from its stored JSON text without re-encoding:
 * `{"type":"subscription-update","id":<message_id>,"data":{"group":<channel>,"message":{...}}}`.
 * A model change (`messageType` "subscription-update", protocol/changes.ts) also carries
 * rohrpost's `data.type`, `data.group` and `data.object`, where rohrpost-js applications read them.
 * The same text goes to every subscriber, so it is built once per message.
 */
export function encodePush(channel: string, messageId: string, messageJson: string, gap = false, messageType?: string): string {
  const head = `{"type":"${PUSH_TYPE}","id":${JSON.stringify(messageId)},"data":`;
  const change = messageType === CHANGE_MESSAGE_TYPE ? changePushData(channel, messageJson) : undefined;
  if (change !== undefined) return `${head}${change}${gap ? ',"gap":true' : ""}}}`;
  return `${head}{"group":${JSON.stringify(channel)},"message":${messageJson}${gap ? ',"gap":true' : ""}}}`;
}

/** A gap found while catching up, with no message after it on `channel` to carry `gap: true`. */
export function encodeGapPush(channel: string): string {
  return `{"type":"${PUSH_TYPE}","id":null,"data":{"group":${JSON.stringify(channel)},"gap":true}}`;
}

/** What `subscribe` and `unsubscribe` name: a list of channels, or a rohrpost-js group. */
export type SubscriptionSpec =
  | { readonly form: "channels"; readonly channels: readonly unknown[]; readonly lastMessage: string | null }
  | { readonly form: "group"; readonly group: string; readonly lastMessage: string | null };

export type SubscriptionSpecError = "shape" | "last_message";

/**
 * `{"channels": [..], "last_message"?: <id|null>}`, or rohrpost-js's group object
 * `{"type": T, "id": I}` meaning the channel `T-I`.
 */
export function parseSubscriptionSpec(data: unknown): SubscriptionSpec | SubscriptionSpecError {
  if (!isObject(data)) return "shape";
  const last = data.last_message;
  if (last !== undefined && last !== null && typeof last !== "string") return "last_message";
  const lastMessage = typeof last === "string" && last.length > 0 ? last : null;
  if ("channels" in data) {
    if (!Array.isArray(data.channels)) return "shape";
    return { form: "channels", channels: data.channels, lastMessage };
  }
  const { type, id } = data;
  if (typeof type === "string" && type.length > 0 && (typeof id === "string" || (typeof id === "number" && Number.isFinite(id)))) {
    return { form: "group", group: `${type}-${id}`, lastMessage };
  }
  return "shape";
}

/** A frame from the server as a client reads it: any object; null for text that is not one. */
export interface ServerFrame {
  readonly id?: unknown;
  readonly type?: unknown;
  readonly data?: unknown;
  readonly error?: unknown;
}

export function parseServerFrame(raw: unknown): ServerFrame | null {
  if (typeof raw !== "string") return null;
  try {
    const frame = JSON.parse(raw) as unknown;
    return typeof frame === "object" && frame !== null ? (frame as ServerFrame) : null;
  } catch {
    return null;
  }
}
