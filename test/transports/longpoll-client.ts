/**
 * What the long-poll tests speak: plain HTTP with the exact response text kept, and raw
 * bytes over a socket for what an HTTP client would refuse to send.
 */
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import type { TidingsServer } from "../../src/server.js";
import { token } from "../helpers/server.js";

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  /** The body exactly as sent. */
  readonly text: string;
  readonly json: unknown;
}

export async function call(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; token?: string; signal?: AbortSignal } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { "content-type": "application/json", ...(init.headers ?? {}) };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers,
    ...(init.body !== undefined ? { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the test will say so
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * A JSON POST on a connection of its own (fetch pools connections per origin, and after a
 * server restart on the same port a pooled one may be dead).
 */
export function postOnce(url: string, body: unknown, tok: string): Promise<Reply> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text), authorization: `Bearer ${tok}` },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const out = Buffer.concat(chunks).toString("utf8");
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
        let json: unknown = undefined;
        try {
          json = JSON.parse(out);
        } catch {
          // not JSON: the test will say so
        }
        resolve({ status: res.statusCode ?? 0, headers, text: out, json });
      });
    });
    req.end(text);
  });
}

/** `POST /<db>/bus` with a body (object or raw string) and a bearer token. */
export function poll(server: TidingsServer, tok: string, body: unknown, db = "test", signal?: AbortSignal): Promise<Reply> {
  return call(`${server.url}/${db}/bus`, { token: tok, body, ...(signal ? { signal } : {}) });
}

let publisherToken: Promise<string> | null = null;
export function publisher(): Promise<string> {
  publisherToken ??= token("publisher-1", { role: "publisher" });
  return publisherToken;
}

/** Publishes one message through HTTP; returns its message_id. */
export async function publish(server: TidingsServer, channel: string, message: Record<string, unknown>, db = "test"): Promise<string> {
  const r = await call(`${server.url}/${db}/publish`, { token: await publisher(), body: { channel, message } });
  if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${r.text}`);
  return (r.json as { message_id: string }).message_id;
}

/** The exact answer text for one message: `message_id` first, then the published keys. */
export function oneMessage(channel: string, id: string, message: Record<string, unknown>): string {
  return JSON.stringify({ channel, message: { message_id: id, ...message } });
}

/** The error body every failure carries. */
export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

export interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Sends `chunks` on a fresh socket, one write each, and reads one response (by its
 * Content-Length). Stops writing once the server has answered, as a client would after a
 * refusal. The socket is closed afterwards.
 */
export function rawExchange(port: number, chunks: ReadonlyArray<string | Buffer>): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let answered = false;
    const finish = (r: RawReply | Error): void => {
      if (answered) return;
      answered = true;
      socket.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    socket.on("data", (d) => {
      received = Buffer.concat([received, d]);
      const r = parseResponse(received);
      if (r !== null) finish(r);
    });
    // A refused upload may reset the socket after the answer: that is fine once answered.
    socket.on("error", (e) => finish(e));
    socket.on("close", () => finish(new Error(`connection closed before a full response: ${received.toString("utf8")}`)));
    socket.on("connect", async () => {
      for (const c of chunks) {
        if (answered || socket.destroyed) return;
        await new Promise<void>((ok) => socket.write(c, () => ok()));
      }
    });
  });
}

function parseResponse(buf: Buffer): RawReply | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...lines] = buf.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  const body = buf.subarray(end + 4);
  if (body.length < length) return null;
  return { status: Number(statusLine!.split(" ")[1]), headers, body: body.subarray(0, length).toString("utf8") };
}

/** Request head bytes for a raw POST. */
export function head(path: string, headers: Record<string, string | number>): string {
  const lines = [`POST ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/**
 * Resolves once `predicate` holds; for server state without an event of its own (a poll
 * has parked). Checks between turns of the event loop, fails after `ms`.
 */
export async function waitFor(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function portOf(server: TidingsServer): number {
  const a = server.http.address();
  if (a === null || typeof a === "string") throw new Error("not listening");
  return a.port;
}

/** Resolves once `n` polls are parked on the server's database. */
export function parked(server: TidingsServer, n: number, db = "test"): Promise<void> {
  return waitFor(() => server.bus.log(db).listenerCount === n, `${n} parked polls`);
}
