import type { ServerContext } from "../http/context.js";
import type { RouteContext } from "../http/router.js";
import { TidingsError } from "../../errors.js";
import { validateChannelList } from "../../core/channels.js";
import { MAX_CURSOR_LENGTH, parsePollBody, pollResponse, type PollBodyError } from "../../protocol/tryton-bus.js";
import { readJsonBody } from "../http/body.js";
import { sendJsonText } from "../http/respond.js";

const BODY_ERRORS: Record<PollBodyError["kind"], TidingsError> = {
  "not-object": new TidingsError("TIDINGS_ERR_REQUEST_INVALID", 'The body must be a JSON object {"last_message", "channels"}.'),
  channels: new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "channels must be a list of strings."),
  last_message: new TidingsError("TIDINGS_ERR_CURSOR_INVALID"),
  last_message_length: new TidingsError(
    "TIDINGS_ERR_CURSOR_INVALID",
    `last_message has more than ${MAX_CURSOR_LENGTH} characters: it cannot be a message id.`,
  ),
  max_messages: new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "max_messages must be a positive integer up to the server's batch limit."),
};

/**
 * `POST /<db>/bus`: Tryton's long-poll. Answers with the first message after the cursor
 * on the caller's channels, or parks until one arrives or the poll timeout passes.
 */
export async function handleBusPoll(server: ServerContext, { req, res, params }: RouteContext): Promise<void> {
  const db = params.db!;
  const { bus, options } = server;
  bus.log(db); // unknown database (404) or bus disabled (501) before anything else
  // A re-polling client's token and channels were checked before: no await for those.
  const who = server.authenticator.cachedFromHeaders(db, req.headers) ?? (await server.authenticate(db, req));
  const parsed = parsePollBody(await readJsonBody(req, options.maxBodyBytes), options.maxBatch);
  if ("kind" in parsed) throw BODY_ERRORS[parsed.kind];
  const channels = validateChannelList(parsed.channels, options.maxChannels);
  // Tryton's server adds the caller's own user channel to every poll.
  if (!channels.includes(`user:${who.user}`)) channels.push(`user:${who.user}`);
  if (!bus.access.allReadableNow(db, who, channels)) await bus.access.assertCanRead(db, who, channels);

  const release = server.polls.acquire(`${db}\u0000${who.user}`);
  // Client gone or server draining: end the wait (answered empty, or not at all if gone).
  let cancel: (() => void) | null = null;
  let ended = false;
  const end = (): void => {
    ended = true;
    cancel?.();
  };
  res.once("close", end);
  const offDrain = server.onDrain(end);
  try {
    const delivery = await bus.poll(db, {
      channels,
      after: parsed.lastMessage,
      limit: parsed.maxMessages ?? 1,
      timeoutMs: options.pollTimeoutMs,
      bindCancel: (c) => (ended ? c() : (cancel = c)),
      onPark: (parked) => bus.metrics.parkedPolls.inc(parked ? 1 : -1),
    });
    if (res.destroyed) return;
    bus.metrics.deliveredVia("longpoll").inc(delivery.messages.length);
    sendJsonText(res, 200, pollResponse(delivery.messages, delivery.gap, parsed.maxMessages !== null));
  } finally {
    res.off("close", end);
    offDrain();
    release();
  }
}
