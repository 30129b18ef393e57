/**
 * Model-change broadcasts (DESIGN §7, rohrpost's NotifyOnCreate/Update/Delete mixins): the
 * message a change becomes on the log, and its WebSocket push. No Node imports: the client
 * SDK shares this file.
 *
 * On the log (long-poll, SSE, stores) a change is the message
 * `{"type": "subscription-update", "data": {"type": "create"|"update"|"delete", "group": G, "object": O}}`
 * on channel G, plus the `message_id` the bus gives it.
 */

/** The message type of every change, and the type of rohrpost's pushes. */
export const CHANGE_MESSAGE_TYPE = "subscription-update";

export const CHANGE_TYPES = ["create", "update", "delete"] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export function isChangeType(v: unknown): v is ChangeType {
  return typeof v === "string" && (CHANGE_TYPES as readonly string[]).includes(v);
}

export type ChangeObject = { [key: string]: unknown };

/** What a change carries, as rohrpost's mixins send it. */
export interface ChangeData {
  readonly type: ChangeType;
  readonly group: string;
  readonly object: ChangeObject;
}

export interface ChangeMessage {
  readonly type: typeof CHANGE_MESSAGE_TYPE;
  readonly data: ChangeData;
}

export function changeMessage(type: ChangeType, group: string, object: ChangeObject): ChangeMessage {
  return { type: CHANGE_MESSAGE_TYPE, data: { type, group, object } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The `data` of the WebSocket push of a change: rohrpost's `{type, group, object}` where
 * rohrpost-js applications read them, and the whole message under `message` as every other
 * push has it. `undefined` when the stored message is not a change.
 */
export function changePushData(channel: string, messageJson: string): string | undefined {
  let message: unknown;
  try {
    message = JSON.parse(messageJson);
  } catch {
    return undefined;
  }
  if (!isObject(message) || message.type !== CHANGE_MESSAGE_TYPE || !isObject(message.data)) return undefined;
  const { type, object } = message.data;
  if (!isChangeType(type) || !isObject(object)) return undefined;
  return (
    `{"type":${JSON.stringify(type)},"group":${JSON.stringify(channel)},"object":${JSON.stringify(object)},` +
    `"message":${messageJson}`
  );
}
