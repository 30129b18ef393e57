import type { ServerContext } from "./context.js";
import type { RouteContext } from "./router.js";
import { TidingsError } from "../../errors.js";
import { isPlainObject } from "../../core/messages.js";
import type { ChangeInput } from "../../core/changes.js";
import type { ChangeObject, ChangeType } from "../../protocol/changes.js";
import { publisher } from "./publish-routes.js";
import { sendJson } from "./respond.js";

/** A change as the wire names it (`updated_fields`), for the core; the core validates the rest. */
function toChangeInput(body: unknown, at: string): ChangeInput {
  if (!isPlainObject(body)) throw new TidingsError("TIDINGS_ERR_CHANGE_INVALID", `${at}A change must be a JSON object.`);
  return {
    model: body.model as string,
    type: body.type as ChangeType,
    object: body.object as ChangeObject,
    ...(body.updated_fields !== undefined ? { updatedFields: body.updated_fields as string[] } : {}),
    ...(body.groups !== undefined ? { groups: body.groups as string[] } : {}),
    // The caller serialised the object: it is sent as given.
    asGiven: true,
  };
}

/**
 * `POST /<db>/changes` (publisher role) with `{"model", "type", "object", "updated_fields"?, "groups"?}`
 * → `{"message_ids": [...]}` (one per group), or with `{"changes": [...]}` →
 * `{"changes": [{"message_ids": [...]}, ...]}` (atomic, in order).
 */
export async function handleChanges(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, body } = await publisher(server, ctx);
  if (!isPlainObject(body)) throw new TidingsError("TIDINGS_ERR_CHANGE_INVALID", "The body must be a JSON object: a change or {\"changes\": [...]}.");
  if (body.changes !== undefined) {
    if (!Array.isArray(body.changes) || body.changes.length === 0) {
      throw new TidingsError("TIDINGS_ERR_CHANGE_INVALID", "changes must be a non-empty list of changes.");
    }
    const inputs = body.changes.map((c: unknown, i: number) => toChangeInput(c, `changes[${i}]: `));
    const ids = await server.bus.changes.publishEach(db, inputs);
    sendJson(ctx.res, 200, { changes: ids.map((message_ids) => ({ message_ids })) });
    return;
  }
  const [ids] = await server.bus.changes.publishEach(db, [toChangeInput(body, "")]);
  sendJson(ctx.res, 200, { message_ids: ids });
}
