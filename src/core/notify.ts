import { TidingsError } from "../errors.js";
import { isPlainObject, type JsonObject } from "./messages.js";

/** Tryton's notification (seed 001): shown by the client as a popup. */
export interface Notification {
  /** One-line summary. */
  readonly title: string;
  /** Short text, may span lines, no markup. @default "" */
  readonly body?: string;
  /** 0 (low) to 3 (urgent). @default 1 */
  readonly priority?: number;
  /** The user to notify (required unless `client` is given). */
  readonly user?: string | number;
  /** Only this client of the user (Tryton's client id). */
  readonly client?: string;
}

const MARKUP = /<\/?[a-zA-Z][^>]*>/;
const MAX_TITLE = 200;
const MAX_BODY = 4000;

function invalid(message: string): never {
  throw new TidingsError("TIDINGS_ERR_NOTIFY_INVALID", message);
}

/** Validates a notification and says where it goes and what is sent, as Tryton's notify() does. */
export function buildNotification(input: unknown): { channel: string; message: JsonObject } {
  if (!isPlainObject(input)) invalid("A notification must be a JSON object.");
  const { title, body = "", priority = 1, user, client } = input as Record<string, unknown>;
  if (typeof title !== "string" || title.trim().length === 0) invalid("title must be a non-empty string.");
  if (/[\r\n]/.test(title)) invalid("title must be a single line.");
  if (title.length > MAX_TITLE) invalid(`title may have at most ${MAX_TITLE} characters.`);
  if (typeof body !== "string") invalid("body must be a string.");
  if (body.length > MAX_BODY) invalid(`body may have at most ${MAX_BODY} characters.`);
  if (MARKUP.test(title) || MARKUP.test(body)) invalid("title and body must be plain text, without markup.");
  if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > 3) {
    invalid("priority must be an integer from 0 (low) to 3 (urgent).");
  }
  if (client !== undefined && (typeof client !== "string" || client.length === 0)) {
    invalid("client must be a non-empty string.");
  }
  let channel: string;
  if (typeof client === "string") {
    channel = `client:${client}`;
  } else if ((typeof user === "number" && Number.isInteger(user)) || (typeof user === "string" && user.length > 0)) {
    channel = `user:${user}`;
  } else {
    invalid("user (a user id) or client is required.");
  }
  // Tryton clients dispatch on `type`; `kind` is the name the notification spec gives it.
  return { channel, message: { type: "notification", kind: "notification", title, body, priority } };
}
