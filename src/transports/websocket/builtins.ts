import { parsePublishBody } from "../../protocol/publish-body.js";
import { validateChannel, validateChannelList } from "../../core/channels.js";
import { canPublish, type Identity } from "../../core/identity.js";
import { isPlainObject } from "../../core/messages.js";
import type { ClaimKeeper } from "../../core/access.js";
import { TidingsError } from "../../errors.js";
import { parseSubscriptionSpec, type SubscriptionReply, type SubscriptionSpec } from "../../protocol/rohrpost.js";
import type { Static } from "@sinclair/typebox";
import type { AUTH_REPLY_DATA, PUBLISH_REPLY_DATA } from "../../protocol/rohrpost-frames.js";
import type { ConnectionApi } from "./connection-api.js";
import type { RohrpostRequestContext } from "./rohrpost-request-context.js";

/** A request the server answers itself; its return value is the reply's `data`. */
export type Builtin = (conn: ConnectionApi, ctx: RohrpostRequestContext) => Promise<unknown>;

/** `ping` is answered at once by the connection (no queueing behind other requests). */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ["auth", auth],
  ["subscribe", subscribe],
  ["unsubscribe", unsubscribe],
  ["publish", publish],
]);

/**
 * `auth` with `{"token": "<JWT>"}` (or the token as a string), or Tryton's
 * `{"session": "<base64 login:user_id:key>"}`. Replies with who the connection now is.
 */
async function auth(conn: ConnectionApi, ctx: RohrpostRequestContext): Promise<Static<typeof AUTH_REPLY_DATA>> {
  const data = ctx.request.data;
  const token = typeof data === "string" ? data : isPlainObject(data) && typeof data.token === "string" ? data.token : null;
  const session = isPlainObject(data) && typeof data.session === "string" ? data.session : null;
  let identity: Identity;
  if (token !== null && token.length > 0) {
    identity = await conn.server.authenticator.fromToken(conn.db, token, "jwt");
  } else if (session !== null && session.length > 0) {
    identity = await conn.server.authenticator.fromHeaders(conn.db, { authorization: `Session ${session}` }, null, { address: conn.address });
  } else {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", 'auth needs {"token": "<JWT>"} or {"session": "<base64 login:user_id:key>"}.');
  }
  const dropped = await conn.adopt(identity, token);
  return {
    user: identity.user,
    role: identity.role,
    expires_at: identity.expiresAt,
    ...(dropped.length > 0 ? { unsubscribed: dropped } : {}),
  };
}

function parseSpec(data: unknown, maxChannels: number): { spec: SubscriptionSpec; channels: string[] } {
  const spec = parseSubscriptionSpec(data);
  if (spec === "last_message") throw new TidingsError("TIDINGS_ERR_CURSOR_INVALID");
  if (spec === "shape") {
    throw new TidingsError(
      "TIDINGS_ERR_REQUEST_INVALID",
      'Expected {"channels": [..], "last_message"?: <message_id|null>} or a group {"type": <string>, "id": <string|number>}.',
    );
  }
  const channels = spec.form === "channels" ? validateChannelList(spec.channels, maxChannels) : [validateChannel(spec.group)];
  return { spec, channels };
}

function describe(spec: SubscriptionSpec, channels: readonly string[]): SubscriptionReply {
  return spec.form === "group" ? { group: spec.group } : { channels: [...channels] };
}

const keepers = new WeakMap<ConnectionApi, ClaimKeeper>();

/** The connection's renewer of `client:` claims, for its current identity. */
function keeperOf(conn: ConnectionApi, who: Identity): ClaimKeeper {
  let keeper = keepers.get(conn);
  if (keeper !== undefined && keeper.who === who) return keeper;
  keeper?.stop();
  const fresh = conn.bus.access.claimKeeper(conn.db, who);
  if (keeper === undefined) conn.onClose(() => keepers.get(conn)?.stop());
  keepers.set(conn, fresh);
  return fresh;
}

/**
 * `subscribe`: all channels or none (a forbidden one is named in the error). The reply comes
 * after the first read, so that it can say `gap: true`; the pushes follow it.
 */
async function subscribe(conn: ConnectionApi, ctx: RohrpostRequestContext): Promise<SubscriptionReply> {
  const who = ctx.requireIdentity();
  const { spec, channels } = parseSpec(ctx.request.data, conn.options.maxChannels);
  await conn.bus.access.assertCanRead(conn.db, who, channels);
  keeperOf(conn, who).add(channels);
  const described = describe(spec, channels);
  await conn.subscribe(channels, spec.lastMessage, (gap) => ctx.reply(gap ? { ...described, gap: true } : described));
  return described;
}

/** `unsubscribe`: the same forms as subscribe; channels not subscribed are ignored. */
async function unsubscribe(conn: ConnectionApi, ctx: RohrpostRequestContext): Promise<SubscriptionReply> {
  const { spec, channels } = parseSpec(ctx.request.data, conn.options.maxChannels);
  conn.unsubscribe(channels);
  return describe(spec, channels);
}

/** `publish` `{"channel", "message"}` → `{"message_id"}`, or `{"messages": [..]}` → `{"message_ids"}`. */
async function publish(conn: ConnectionApi, ctx: RohrpostRequestContext): Promise<Static<typeof PUBLISH_REPLY_DATA>> {
  const who = ctx.requireIdentity();
  if (!canPublish(who)) throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "Publishing needs the publisher or admin role.");
  const parsed = parsePublishBody(ctx.request.data, "The publish data");
  if ("many" in parsed) return { message_ids: await conn.bus.publishMany(conn.db, parsed.many) };
  return { message_id: await conn.bus.publish(conn.db, parsed.one.channel, parsed.one.message) };
}
