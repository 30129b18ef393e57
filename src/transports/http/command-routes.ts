import { randomUUID } from "node:crypto";
import type { ServerContext } from "./context.js";
import { route, type RouteContext, type RouteSpec } from "./router.js";
import { TidingsError } from "../../errors.js";
import { canPublish, type Identity } from "../../core/identity.js";
import type { CommandRecord, CommandState } from "../../stores/store.js";
import { addressChannel, commandDelivery, commandView } from "../../protocol/commands.js";
import { claimLoop } from "../../protocol/claim-loop.js";
import { parseOutcome } from "../../commands/validation.js";
import { CLAIM_BODY, CLAIMER_BODY, RELEASE_BODY, RESULT_BODY, SEND_COMMAND_BODY } from "../../protocol/command-bodies.js";
import type { Static, TSchema } from "@sinclair/typebox";
import { sendJson } from "./respond.js";

const STATES: readonly CommandState[] = ["pending", "delivered", "running", "succeeded", "failed", "expired", "cancelled"];

/**
 * The command API (docs/protocol/commands.md). Senders (publisher or admin role):
 * `POST /<db>/commands`, `GET /<db>/commands`, `GET /<db>/commands/<id>?wait=s`,
 * `POST /<db>/commands/<id>/cancel`. Clients serving an address (token `addresses`, or
 * admin): `POST /<db>/commands/claim|renew|release`, `POST /<db>/commands/<id>/start|result`.
 */
export function commandRoutes(server: ServerContext): RouteSpec[] {
  const wait = { wait: "seconds to wait for the command to be final (capped by pollTimeoutMs)" };
  return [
    route({ method: "POST", path: "/:db/commands", role: "publisher", summary: "Send a command to the client serving an address", body: SEND_COMMAND_BODY, query: wait, handler: (ctx) => send(server, ctx) }),
    route({
      method: "GET",
      path: "/:db/commands",
      role: "publisher",
      summary: "List commands, newest first",
      query: { address: "only this address", state: `comma list of ${STATES.join(", ")}`, since: "ISO 8601 or ms", until: "ISO 8601 or ms", limit: "most commands" },
      handler: (ctx) => list(server, ctx),
    }),
    route({ method: "POST", path: "/:db/commands/claim", role: "address", summary: "Take pending commands of an address under a lease", body: CLAIM_BODY, handler: (ctx) => claim(server, ctx) }),
    route({ method: "POST", path: "/:db/commands/renew", role: "address", summary: "Renew the leases of a claimer's running commands", body: CLAIMER_BODY, handler: (ctx) => renew(server, ctx) }),
    route({ method: "POST", path: "/:db/commands/release", role: "address", summary: "Give a claimer's commands of an address back", body: RELEASE_BODY, handler: (ctx) => release(server, ctx) }),
    route({ method: "GET", path: "/:db/commands/:id", role: "publisher", summary: "One command, or wait for its outcome", query: wait, handler: (ctx) => get(server, ctx) }),
    route({ method: "POST", path: "/:db/commands/:id/cancel", role: "publisher", summary: "Cancel a command without an outcome", handler: (ctx) => cancel(server, ctx) }),
    route({ method: "POST", path: "/:db/commands/:id/start", role: "address", summary: "Say that a claimed command runs", body: CLAIMER_BODY, handler: (ctx) => start(server, ctx) }),
    route({ method: "POST", path: "/:db/commands/:id/result", role: "address", summary: "Report a command's result or error", body: RESULT_BODY, handler: (ctx) => result(server, ctx) }),
  ];
}

type Body<T extends TSchema> = RouteContext<Static<T>>;

// ---- senders ------------------------------------------------------------------------------------

async function sender(server: ServerContext, ctx: RouteContext): Promise<{ db: string; who: Identity }> {
  const db = ctx.params.db!;
  server.bus.assertServes(db);
  const who = await server.authenticate(db, ctx.req);
  if (!canPublish(who)) {
    throw new TidingsError("TIDINGS_ERR_ROLE_FORBIDDEN", "Sending and inspecting commands needs the publisher or admin role.");
  }
  return { db, who };
}

/** The body of a request, checked against its route's schema; counted against the caller's body caps. */
function bodyOf<T>(server: ServerContext, ctx: RouteContext<T>, db: string, who: Identity): Promise<T> {
  return ctx.readBody({ guard: server.bodies, key: `${db}\u0000${who.user}` });
}

/** `?wait=<seconds>` capped by the poll timeout; 0 when absent. */
function waitMs(server: ServerContext, url: URL): number {
  const raw = url.searchParams.get("wait");
  if (raw === null || raw === "") return 0;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "wait must be a number of seconds.");
  return Math.min(s * 1000, server.options.pollTimeoutMs);
}

/** A parked poll slot when the request will wait (429 when the caps are reached), else a no-op. */
function parkSlot(server: ServerContext, db: string, who: Identity, waiting: boolean): () => void {
  return waiting ? server.polls.acquire(`${db}\u0000${who.user}`) : () => {};
}

/** Waits for an outcome while the request lives and the server is not draining. */
async function waitFor(server: ServerContext, ctx: RouteContext, db: string, id: string, ms: number) {
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  ctx.res.once("close", stop);
  const offDrain = server.onDrain(stop);
  try {
    return await server.bus.commands.wait(db, id, { timeoutMs: ms, signal: abort.signal });
  } finally {
    ctx.res.off("close", stop);
    offDrain();
  }
}

/**
 * `POST /<db>/commands` `{"address", "method", "args"?, "deadline"?, "timeout"?, "idempotency_key"?}`
 * → 201 with the command (200 when the idempotency key returned an earlier one);
 * `?wait=s` answers once it is final or after s seconds.
 */
async function send(server: ServerContext, ctx: Body<typeof SEND_COMMAND_BODY>): Promise<void> {
  const { db, who } = await sender(server, ctx);
  const body = await bodyOf(server, ctx, db, who);
  const wait = waitMs(server, ctx.url);
  // Taken before sending: a 429 must not follow a command that was stored.
  const release = parkSlot(server, db, who, wait > 0);
  try {
    const sent = await server.bus.commands.send(db, body.address, body.method, body.args, {
      deadline: body.deadline ?? null,
      timeoutMs: typeof body.timeout === "number" ? body.timeout * 1000 : null,
      idempotencyKey: body.idempotency_key,
    });
    const command = wait > 0 ? await waitFor(server, ctx, db, sent.command.id, wait) : sent.command;
    sendJson(ctx.res, sent.created ? 201 : 200, commandView(command));
  } finally {
    release();
  }
}

/** `GET /<db>/commands?address=&state=a,b&since=&until=&limit=` → `{"commands": [...]}`, newest first. */
async function list(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db } = await sender(server, ctx);
  const q = ctx.url.searchParams;
  const address = q.get("address");
  const stateText = q.get("state");
  let states: CommandState[] | undefined;
  if (stateText !== null && stateText !== "") {
    states = stateText.split(",").map((s) => s.trim()) as CommandState[];
    for (const s of states) {
      if (!STATES.includes(s)) {
        throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `Unknown state ${JSON.stringify(s)}: use ${STATES.join(", ")}.`);
      }
    }
  }
  const limitText = q.get("limit");
  const commands = await server.bus.commands.list(db, {
    ...(address !== null && address !== "" ? { address } : {}),
    ...(states !== undefined ? { states } : {}),
    ...timeParam(q.get("since"), "since"),
    ...timeParam(q.get("until"), "until"),
    ...(limitText !== null && limitText !== "" ? { limit: Number(limitText) } : {}),
  });
  sendJson(ctx.res, 200, { commands: commands.map(commandView) });
}

function timeParam(text: string | null, name: "since" | "until"): { since?: number; until?: number } {
  if (text === null || text === "") return {};
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `${name} must be an ISO 8601 date or milliseconds since the epoch.`);
  }
  return { [name]: ms };
}

/** `GET /<db>/commands/<id>?wait=s`: the command, once final or after s seconds (a long-poll). */
async function get(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who } = await sender(server, ctx);
  const id = ctx.params.id!;
  const wait = waitMs(server, ctx.url);
  const release = parkSlot(server, db, who, wait > 0);
  try {
    const command = wait > 0 ? await waitFor(server, ctx, db, id, wait) : await server.bus.commands.get(db, id);
    sendJson(ctx.res, 200, commandView(command));
  } finally {
    release();
  }
}

/** `POST /<db>/commands/<id>/cancel` → the cancelled command; 409 when it already has an outcome. */
async function cancel(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db } = await sender(server, ctx);
  const command = await server.bus.commands.cancel(db, ctx.params.id!);
  sendJson(ctx.res, 200, commandView(command));
}

// ---- clients ------------------------------------------------------------------------------------

/** An HTTP client's claims are held as `http:<user>:<claimer>`: one user cannot answer for another. */
function claimerKey(who: Identity, claimer: string): string {
  return `http:${who.user}:${claimer}`;
}

async function client<T>(server: ServerContext, ctx: RouteContext<T>): Promise<{ db: string; who: Identity; body: T }> {
  const db = ctx.params.db!;
  server.bus.assertServes(db);
  const who = await server.authenticate(db, ctx.req);
  return { db, who, body: await bodyOf(server, ctx, db, who) };
}

function assertServes(server: ServerContext, who: Identity, address: string): void {
  if (!server.bus.access.canServeAddress(who, address)) {
    throw new TidingsError("TIDINGS_ERR_ADDRESS_FORBIDDEN", `Not allowed to serve address ${address}.`, { details: { address } });
  }
}

/**
 * `POST /<db>/commands/claim` `{"address", "claimer"?, "limit"?, "wait"?}` →
 * `{"claimer", "cursor", "lease_ms", "commands": [...]}`. Takes pending commands under a
 * lease (and renews the claimer's other leases). With `wait` (seconds) and nothing to take,
 * parks until a command arrives. `cursor` is where a `POST /<db>/bus` on `command:<address>`
 * should resume to be woken by the next one.
 */
async function claim(server: ServerContext, ctx: Body<typeof CLAIM_BODY>): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const { address } = body;
  assertServes(server, who, address);
  const claimer = body.claimer ?? randomUUID();
  const limit = body.limit ?? 10;
  const waitS = body.wait ?? 0;
  const { bus } = server;
  const { commands } = bus;
  const key = claimerKey(who, claimer);
  await commands.renew(db, key);
  const until = Date.now() + Math.min(waitS * 1000, server.options.pollTimeoutMs);
  let cursor = await commands.cursor(db);
  let got: readonly CommandRecord[] = [];
  // Parking takes a poll slot and listens for the client or the server going away.
  let parked: (() => void) | null = null;
  const abort = new AbortController();
  try {
    await claimLoop({
      // One answer: it stops at the first claim that found something.
      live: () => got.length === 0 && !abort.signal.aborted,
      room: () => limit,
      claim: (n) => commands.claim(db, address, key, n),
      deliver: (claimed) => (got = claimed),
      wake: async () => {
        if (got.length > 0 || Date.now() >= until) return false;
        parked ??= park(server, ctx, db, who, abort);
        const woken = await bus.poll(db, {
          channels: [addressChannel(address)],
          after: cursor,
          limit: 1,
          timeoutMs: until - Date.now(),
          signal: abort.signal,
          onPark: (on) => (bus.metrics.parked += on ? 1 : -1),
        });
        if (woken.messages.length === 0) return false;
        cursor = await commands.cursor(db);
        return true;
      },
    });
  } finally {
    (parked as (() => void) | null)?.();
  }
  if (ctx.res.destroyed && got.length > 0) {
    // The client is gone: give the commands back at once rather than when the lease runs out.
    await commands.release(db, key, got.map((c) => ({ id: c.id, address })));
    return;
  }
  sendJson(ctx.res, 200, {
    claimer,
    cursor,
    lease_ms: server.options.commands.leaseMs,
    commands: got.map(commandDelivery),
  });
}

/** Takes a parked-poll slot and aborts the wait when the client leaves or the server drains; returns the undo. */
function park(server: ServerContext, ctx: RouteContext<unknown>, db: string, who: Identity, abort: AbortController): () => void {
  const release = server.polls.acquire(`${db}\u0000${who.user}`);
  const stop = (): void => abort.abort();
  ctx.res.once("close", stop);
  const offDrain = server.onDrain(stop);
  return () => {
    ctx.res.off("close", stop);
    offDrain();
    release();
  };
}

/** `POST /<db>/commands/renew` `{"claimer"}` → `{"renewed": n}`: keeps running commands' leases. */
async function renew(server: ServerContext, ctx: Body<typeof CLAIMER_BODY>): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const renewed = await server.bus.commands.renew(db, claimerKey(who, body.claimer));
  sendJson(ctx.res, 200, { renewed });
}

/** `POST /<db>/commands/release` `{"claimer", "address"}` → `{"released": n}`: a client stopping cleanly. */
async function release(server: ServerContext, ctx: Body<typeof RELEASE_BODY>): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  assertServes(server, who, body.address);
  const released = await server.bus.commands.release(db, claimerKey(who, body.claimer), [{ id: null, address: body.address }]);
  sendJson(ctx.res, 200, { released });
}

/** `POST /<db>/commands/<id>/start` `{"claimer"}` → the running command. */
async function start(server: ServerContext, ctx: Body<typeof CLAIMER_BODY>): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const command = await server.bus.commands.start(db, ctx.params.id!, claimerKey(who, body.claimer));
  sendJson(ctx.res, 200, commandView(command));
}

/**
 * `POST /<db>/commands/<id>/result` `{"claimer", "result": …}` or `{"claimer", "error": {"message", "code"?, "data"?}}`
 * → the final command. 404 unknown id, 403 not held by this claimer, 409 already final, 400/413 malformed.
 */
async function result(server: ServerContext, ctx: Body<typeof RESULT_BODY>): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const { claimer, ...answer } = body;
  const outcome = parseOutcome(answer, server.options.commands.maxResultBytes);
  const command = await server.bus.commands.complete(db, ctx.params.id!, claimerKey(who, claimer), outcome);
  sendJson(ctx.res, 200, commandView(command));
}
