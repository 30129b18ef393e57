import type { ServerContext } from "../http/context.js";
import type { RouteContext } from "../http/router.js";
import { TidingsError } from "../../errors.js";
import { validateChannelList } from "../../core/channels.js";
import { parseChannelParams, resumeCursor } from "../../protocol/sse.js";
import { EventStream } from "./event-stream.js";

/**
 * `GET /<db>/events?channels=a,b&channel=c`: Server-Sent Events. Credentials from the
 * Authorization header, the session cookie, or `?token=` (EventSource cannot set headers).
 * Resumes from `Last-Event-ID` (what EventSource sends on reconnect), else `?last_message=`,
 * else the messages of the last no-cursor window, as a long-poll without a cursor.
 */
export async function handleEvents(server: ServerContext, { req, res, url, params }: RouteContext): Promise<void> {
  const db = params.db!;
  const { bus, options } = server;
  bus.assertServes(db); // unknown database (404) or bus disabled (501) first, nothing loaded before auth
  const who = await server.authenticate(db, req, url.searchParams.get("token"));
  const channels = validateChannelList(parseChannelParams(url.searchParams), options.maxChannels);
  if (channels.length === 0) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "Name at least one channel: ?channels=a,b or ?channel=a&channel=b.");
  }
  await bus.access.assertCanRead(db, who, channels);
  const keeper = bus.access.claimKeeper(db, who);
  keeper.add(channels);
  res.once("close", () => keeper.stop());
  const lastEventId = req.headers["last-event-id"];
  const after = resumeCursor(Array.isArray(lastEventId) ? lastEventId[0] : lastEventId, url.searchParams.get("last_message"));
  // Loaded (or refused: maxDatabases) before the stream's headers are written.
  new EventStream(server, res, bus.log(db), who, channels, after);
}
