import type { ServerContext } from "./context.js";
import type { RouteContext } from "./router.js";
import { TidingsError } from "../../errors.js";
import { canPublish, type Identity } from "../../core/identity.js";
import { parsePublishBody } from "../../protocol/publish-body.js";
import { readJsonBody } from "./body.js";
import { sendJson } from "./respond.js";
import type { Notification } from "../../core/notify.js";

/** The database, the caller (publisher or admin role) and the JSON body of a publishing request. */
export async function publisher(server: ServerContext, ctx: RouteContext): Promise<{ db: string; who: Identity; body: unknown }> {
  const db = ctx.params.db!;
  server.bus.assertServes(db);
  // An application publishing over a keep-alive connection presents the same token each time.
  const who = server.authenticator.cachedFromHeaders(db, ctx.req.headers, ctx.req.socket) ?? (await server.authenticate(db, ctx.req));
  if (!canPublish(who)) throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "Publishing needs the publisher or admin role.");
  return { db, who, body: await readJsonBody(ctx.req, server.options.maxBodyBytes, { guard: server.bodies, key: `${db}\u0000${who.user}` }) };
}

/**
 * `POST /<db>/publish` with `{"channel", "message"}` → `{"message_id"}`, or with
 * `{"messages": [{"channel", "message"}, ...]}` → `{"message_ids": [...]}` (atomic, in order).
 */
export async function handlePublish(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, body } = await publisher(server, ctx);
  const parsed = parsePublishBody(body);
  if ("many" in parsed) {
    const ids = await server.bus.publishMany(db, parsed.many);
    sendJson(ctx.res, 200, { message_ids: ids });
    return;
  }
  const id = await server.bus.publish(db, parsed.one.channel, parsed.one.message);
  sendJson(ctx.res, 200, { message_id: id });
}

/** `POST /<db>/notify` with `{title, body?, priority?, user?, client?}` → `{"message_id"}`. */
export async function handleNotify(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, body } = await publisher(server, ctx);
  const id = await server.bus.notify(db, body as Notification);
  sendJson(ctx.res, 200, { message_id: id });
}
