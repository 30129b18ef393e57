import type { ServerContext } from "./context.js";
import type { RouteContext } from "./router.js";
import { TidingsError } from "../../errors.js";
import { canPublish, type Identity } from "../../core/identity.js";
import { isPlainObject } from "../../core/messages.js";
import type { PublishItem } from "../../core/bus.js";
import { readJsonBody } from "./body.js";
import { sendJson } from "./respond.js";
import type { Notification } from "../../core/notify.js";

/** The database, the caller (publisher or admin role) and the JSON body of a publishing request. */
export async function publisher(server: ServerContext, ctx: RouteContext): Promise<{ db: string; who: Identity; body: unknown }> {
  const db = ctx.params.db!;
  server.bus.log(db);
  // An application publishing over a keep-alive connection presents the same token each time.
  const who = server.authenticator.cachedFromHeaders(db, ctx.req.headers, ctx.req.socket) ?? (await server.authenticate(db, ctx.req));
  if (!canPublish(who)) throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "Publishing needs the publisher or admin role.");
  return { db, who, body: await readJsonBody(ctx.req, server.options.maxBodyBytes) };
}

/**
 * `POST /<db>/publish` with `{"channel", "message"}` → `{"message_id"}`, or with
 * `{"messages": [{"channel", "message"}, ...]}` → `{"message_ids": [...]}` (atomic, in order).
 */
export async function handlePublish(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, body } = await publisher(server, ctx);
  if (!isPlainObject(body)) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "The body must be a JSON object.");
  if (body.messages !== undefined) {
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "messages must be a non-empty list of {channel, message}.");
    }
    const items: PublishItem[] = body.messages.map((m: unknown, i: number) => {
      if (!isPlainObject(m)) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `messages[${i}] must be {channel, message}.`);
      return { channel: m.channel as string, message: m.message };
    });
    const ids = await server.bus.publishMany(db, items);
    sendJson(ctx.res, 200, { message_ids: ids });
    return;
  }
  const id = await server.bus.publish(db, body.channel as string, body.message);
  sendJson(ctx.res, 200, { message_id: id });
}

/** `POST /<db>/notify` with `{title, body?, priority?, user?, client?}` → `{"message_id"}`. */
export async function handleNotify(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, body } = await publisher(server, ctx);
  const id = await server.bus.notify(db, body as Notification);
  sendJson(ctx.res, 200, { message_id: id });
}
