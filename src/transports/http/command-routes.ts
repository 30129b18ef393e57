import { randomUUID } from "node:crypto";
import type { ServerContext } from "./context.js";
import type { RouteContext, Router } from "./router.js";
import { TidingsError } from "../../errors.js";
import { canPublish, type Identity } from "../../core/identity.js";
import { isPlainObject, type JsonObject } from "../../core/messages.js";
import type { CommandRecord, CommandState } from "../../stores/store.js";
import { addressChannel, commandDelivery, commandView } from "../../protocol/commands.js";
import { claimLoop } from "../../protocol/claim-loop.js";
import { CLAIMER, parseOutcome, validateAddress } from "../../commands/validation.js";
import { readJsonBody } from "./body.js";
import { sendJson } from "./respond.js";

const STATES: readonly CommandState[] = ["pending", "delivered", "running", "succeeded", "failed", "expired", "cancelled"];
/** Most commands one claim hands out. */
const MAX_CLAIM = 100;

/**
 * The command API (docs/protocol/commands.md). Senders (publisher or admin role):
 * `POST /<db>/commands`, `GET /<db>/commands`, `GET /<db>/commands/<id>?wait=s`,
 * `POST /<db>/commands/<id>/cancel`. Clients serving an address (token `addresses`, or
 * admin): `POST /<db>/commands/claim|renew|release`, `POST /<db>/commands/<id>/start|result`.
 */
export function registerCommandRoutes(server: ServerContext, r: Router): void {
  r.add("POST", "/:db/commands", (ctx) => send(server, ctx));
  r.add("GET", "/:db/commands", (ctx) => list(server, ctx));
  r.add("POST", "/:db/commands/claim", (ctx) => claim(server, ctx));
  r.add("POST", "/:db/commands/renew", (ctx) => renew(server, ctx));
  r.add("POST", "/:db/commands/release", (ctx) => release(server, ctx));
  r.add("GET", "/:db/commands/:id", (ctx) => get(server, ctx));
  r.add("POST", "/:db/commands/:id/cancel", (ctx) => cancel(server, ctx));
  r.add("POST", "/:db/commands/:id/start", (ctx) => start(server, ctx));
  r.add("POST", "/:db/commands/:id/result", (ctx) => result(server, ctx));
}

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

async function objectBody(server: ServerContext, ctx: RouteContext, who: Identity): Promise<JsonObject> {
  const body = await readJsonBody(ctx.req, server.options.maxBodyBytes, { guard: server.bodies, key: `${ctx.params.db!}\u0000${who.user}` });
  if (!isPlainObject(body)) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "The body must be a JSON object.");
  return body;
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
async function send(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who } = await sender(server, ctx);
  const body = await objectBody(server, ctx, who);
  const wait = waitMs(server, ctx.url);
  const timeout = body.timeout;
  if (timeout !== undefined && timeout !== null && (typeof timeout !== "number" || !(timeout > 0))) {
    throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", "timeout must be a positive number of seconds.");
  }
  const deadline = body.deadline;
  if (deadline !== undefined && deadline !== null && typeof deadline !== "string" && typeof deadline !== "number") {
    throw new TidingsError("TIDINGS_ERR_COMMAND_INVALID", "deadline must be an ISO 8601 date or milliseconds since the epoch.");
  }
  // Taken before sending: a 429 must not follow a command that was stored.
  const release = parkSlot(server, db, who, wait > 0);
  try {
    const sent = await server.bus.commands.send(db, body.address as string, body.method as string, body.args as unknown[], {
      deadline: deadline ?? null,
      timeoutMs: typeof timeout === "number" ? timeout * 1000 : null,
      idempotencyKey: body.idempotency_key as string | null | undefined,
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

async function client(server: ServerContext, ctx: RouteContext): Promise<{ db: string; who: Identity; body: JsonObject }> {
  const db = ctx.params.db!;
  server.bus.assertServes(db);
  const who = await server.authenticate(db, ctx.req);
  return { db, who, body: await objectBody(server, ctx, who) };
}

function claimerOf(body: JsonObject, required: boolean): string | null {
  const c = body.claimer;
  if (c === undefined || c === null) {
    if (required) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "claimer is required: the name the claim answer gave.");
    return null;
  }
  if (typeof c !== "string" || !CLAIMER.test(c)) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "claimer must be 1 to 100 of A-Z a-z 0-9 _ . : -");
  }
  return c;
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
async function claim(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const address = validateAddress(body.address);
  assertServes(server, who, address);
  const claimer = claimerOf(body, false) ?? randomUUID();
  const limit = body.limit ?? 10;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_CLAIM) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `limit must be an integer from 1 to ${MAX_CLAIM}.`);
  }
  const waitS = body.wait ?? 0;
  if (typeof waitS !== "number" || !Number.isFinite(waitS) || waitS < 0) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "wait must be a number of seconds.");
  }
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
function park(server: ServerContext, ctx: RouteContext, db: string, who: Identity, abort: AbortController): () => void {
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
async function renew(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const claimer = claimerOf(body, true)!;
  const renewed = await server.bus.commands.renew(db, claimerKey(who, claimer));
  sendJson(ctx.res, 200, { renewed });
}

/** `POST /<db>/commands/release` `{"claimer", "address"}` → `{"released": n}`: a client stopping cleanly. */
async function release(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const claimer = claimerOf(body, true)!;
  const address = validateAddress(body.address);
  assertServes(server, who, address);
  const released = await server.bus.commands.release(db, claimerKey(who, claimer), [{ id: null, address }]);
  sendJson(ctx.res, 200, { released });
}

/** `POST /<db>/commands/<id>/start` `{"claimer"}` → the running command. */
async function start(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const claimer = claimerOf(body, true)!;
  const command = await server.bus.commands.start(db, ctx.params.id!, claimerKey(who, claimer));
  sendJson(ctx.res, 200, commandView(command));
}

/**
 * `POST /<db>/commands/<id>/result` `{"claimer", "result": …}` or `{"claimer", "error": {"message", "code"?, "data"?}}`
 * → the final command. 404 unknown id, 403 not held by this claimer, 409 already final, 400/413 malformed.
 */
async function result(server: ServerContext, ctx: RouteContext): Promise<void> {
  const { db, who, body } = await client(server, ctx);
  const claimer = claimerOf(body, true)!;
  const { claimer: _claimer, ...answer } = body;
  const outcome = parseOutcome(answer, server.options.commands.maxResultBytes);
  const command = await server.bus.commands.complete(db, ctx.params.id!, claimerKey(who, claimer), outcome);
  sendJson(ctx.res, 200, commandView(command));
}
