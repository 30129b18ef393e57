import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { ServerContext } from "./context.js";
import type { Identity } from "../../core/identity.js";
import type { RouteContext } from "./router.js";
import { TidingsError } from "../../errors.js";
import { validateChannelList } from "../../core/channels.js";
import { MAX_CURSOR_LENGTH, parsePollBody, pollResponse, type PollBodyError } from "../../protocol/tryton-bus.js";
import { onBodyText, parseJson, type BodySink } from "./body.js";
import type { Delivery } from "../../core/listener.js";
import type { PollRequest, PollSink } from "../../core/poll.js";
import { sendJsonText } from "./respond.js";
import type { UserBytes } from "./user-bytes.js";

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
export function handleBusPoll(server: ServerContext, { req, res, params }: RouteContext): void {
  const db = params.db!;
  // Unknown database (404) or bus disabled (501) first; nothing of the database is loaded
  // before the caller is authenticated.
  server.bus.assertServes(db);
  const busPoll = new BusPoll(server, req, res, db);
  const cached = server.authenticator.cachedFromHeaders(db, req.headers, req.socket);
  if (cached !== undefined) busPoll.authenticated(cached);
  else
    server.authenticate(db, req).then(
      (who) => busPoll.authenticated(who),
      (error: unknown) => busPoll.fail(error),
    );
}

/** What a connection polled last, validated and allowed: Tryton clients re-poll the same channels. */
interface PollShape {
  readonly who: Identity;
  readonly db: string;
  /** The channels exactly as the client sent them. */
  readonly asked: readonly unknown[];
  /** Validated, deduplicated, the caller's own user channel added. */
  readonly channels: string[];
  readonly channelSet: ReadonlySet<string>;
  readonly limiterKey: string;
  /**
   * Until when the access check that passed holds: the same identity may read the same
   * channels again without one. For ever, unless a `client:` channel's claim is to be
   * renewed (AccessControl.recheckMs).
   */
  allowedUntil: number;
}

const lastShape = new WeakMap<Socket, PollShape>();

// What an answer holds against its user until the response closes (handed to the kernel,
// or aborted). Pipelined answers still queued behind another get no "close" of their own
// when the connection dies: the socket's "close" releases whatever is left.
const kUnsent = Symbol("tidings.unsent");
interface Held {
  readonly key: string;
  readonly size: number;
  readonly bytes: UserBytes;
  readonly socket: HoldingSocket;
}
type TrackedResponse = ServerResponse & { [kUnsent]?: Held };
type HoldingSocket = Socket & { [kUnsent]?: Set<Held> };

function release(held: Held): void {
  if (held.socket[kUnsent]?.delete(held) !== true) return;
  held.bytes.release(held.key, held.size);
}

function releaseUnsent(this: TrackedResponse): void {
  const held = this[kUnsent];
  if (held !== undefined) release(held);
}

function releaseSocket(this: HoldingSocket): void {
  for (const held of [...(this[kUnsent] ?? [])]) release(held);
}

function trackUnsent(res: TrackedResponse, socket: HoldingSocket, key: string, size: number, bytes: UserBytes): void {
  const held: Held = { key, size, bytes, socket };
  let all = socket[kUnsent];
  if (all === undefined) {
    all = socket[kUnsent] = new Set();
    socket.once("close", releaseSocket);
  }
  all.add(held);
  bytes.add(key, size);
  res[kUnsent] = held;
  res.on("close", releaseUnsent);
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One long-poll request, from its body to its answer. A re-polling client (token verified
 * before, same channels as its connection's last poll, cursor in the hot tail) is answered
 * from the body's `end` event with no promise and no access check in between: that path
 * is most of a busy server's work, so this is one object with methods rather than a
 * closure per step.
 */
class BusPoll implements BodySink, PollSink, PollRequest {
  channels: string[] = [];
  channelSet: ReadonlySet<string> | undefined;
  after: string | null = null;
  limit = 1;
  timeoutMs: number;
  readonly maxBytes: number;
  private who: Identity | undefined;
  private shape: PollShape | undefined;
  private batch = false;
  private holding = false;
  private cancel: (() => void) | null = null;
  private offDrain: (() => void) | null = null;

  constructor(
    private readonly server: ServerContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly db: string,
  ) {
    this.timeoutMs = server.options.pollTimeoutMs;
    this.maxBytes = server.options.maxResponseBytes;
  }

  authenticated(who: Identity): void {
    this.who = who;
    // A parked poll ends when its credentials do: answered empty at `exp` (Tryton clients
    // re-poll on an empty answer, and that poll gets 401).
    if (who.expiresAt !== null) this.timeoutMs = Math.min(this.timeoutMs, Math.max(0, who.expiresAt - Date.now()));
    onBodyText(this.req, this.server.options.maxBodyBytes, this, { guard: this.server.bodies, key: `${this.db}\u0000${who.user}` });
  }

  /** The body has arrived: validate it, check access, then poll. */
  text(text: string): void {
    try {
      const parsed = parsePollBody(parseJson(text), this.server.options.maxBatch);
      if ("kind" in parsed) throw BODY_ERRORS[parsed.kind];
      const shape = (this.shape = this.shapeOf(parsed.channels));
      this.channels = shape.channels;
      this.channelSet = shape.channelSet;
      this.after = parsed.lastMessage;
      this.limit = parsed.maxMessages ?? 1;
      this.batch = parsed.maxMessages !== null;
      const { access } = this.server.bus;
      if (shape.allowedUntil > Date.now()) this.start();
      else if (access.allReadableNow(this.db, shape.who, shape.channels)) {
        shape.allowedUntil = access.recheckAt(this.db, shape.who, shape.channels);
        this.start();
      } else
        access.assertCanRead(this.db, shape.who, shape.channels).then(
          () => {
            shape.allowedUntil = access.recheckAt(this.db, shape.who, shape.channels);
            this.start();
          },
          (error: unknown) => this.fail(error),
        );
    } catch (error) {
      this.fail(error);
    }
  }

  /** The connection's last shape when this poll asks the same, else a new one (validated). */
  private shapeOf(asked: readonly unknown[]): PollShape {
    const who = this.who!;
    const socket = this.req.socket;
    const last = lastShape.get(socket);
    if (last !== undefined && last.who === who && last.db === this.db && sameList(last.asked, asked)) return last;
    const channels = validateChannelList(asked, this.server.options.maxChannels);
    // Tryton's server adds the caller's own user channel to every poll.
    const own = `user:${who.user}`;
    if (!channels.includes(own)) channels.push(own);
    const shape: PollShape = {
      who,
      db: this.db,
      asked,
      channels,
      channelSet: new Set(channels),
      limiterKey: `${this.db}\u0000${who.user}`,
      allowedUntil: 0,
    };
    lastShape.set(socket, shape);
    return shape;
  }

  private start(): void {
    try {
      this.server.polls.take(this.shape!.limiterKey);
      this.holding = true;
      this.server.bus.startPoll(this.db, this, this);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Parked: only now listen for the client leaving and the server draining. */
  bindCancel(cancel: () => void): void {
    if (this.req.socket.destroyed) return cancel();
    this.cancel = cancel;
    this.res.once("close", cancel);
    this.offDrain = this.server.onDrain(cancel);
  }

  onPark(parked: boolean): void {
    this.server.bus.metrics.parked += parked ? 1 : -1;
  }

  done(delivery: Delivery): void {
    this.cleanup();
    const { res } = this;
    if (res.destroyed) return;
    const expiresAt = this.who?.expiresAt ?? null;
    if (expiresAt !== null && expiresAt <= Date.now()) {
      // Nothing reaches a caller after its token expired; the cursor it keeps loses nothing.
      sendJsonText(res, 200, pollResponse([], false, this.batch));
      return;
    }
    const text = pollResponse(delivery.messages, delivery.gap, this.batch);
    // Answers wait in this process until their client reads: a user's unread answers, over
    // all its connections, are capped (the client re-polls from its cursor: nothing is lost).
    const { unsent } = this.server;
    const key = this.shape!.limiterKey;
    const size = text.length;
    if (unsent.wouldExceed(key, size)) {
      this.server.bus.metrics.refused.inc({ reason: "unsent" });
      this.server.failRequest(
        this.req,
        res,
        new TidingsError("TIDINGS_ERR_LIMIT_UNSENT", `Your clients have not read ${unsent.of(key)} bytes of earlier answers; read them, then poll again.`),
      );
      return;
    }
    trackUnsent(res, this.req.socket, key, size, unsent);
    this.server.bus.metrics.deliveredVia("longpoll").count += delivery.messages.length;
    sendJsonText(res, 200, text);
  }

  fail(error: unknown): void {
    this.cleanup();
    this.server.failRequest(this.req, this.res, error);
  }

  private cleanup(): void {
    if (this.cancel !== null) this.res.off("close", this.cancel);
    this.offDrain?.();
    if (this.holding) this.server.polls.give(this.shape!.limiterKey);
    this.holding = false;
    this.cancel = this.offDrain = null;
  }
}
