/**
 * Subscribers on the three transports, written against the raw wire as a client would be:
 * each keeps its cursor, and when its connection fails it resumes on the next instance of
 * its list with that cursor. They record every message they are given, in order, with the
 * instance that gave it, so that tests can compare sequences across instances and transports.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import WebSocket from "ws";
import { DB, Signal, backoff } from "./helpers.js";

export interface Received {
  readonly id: string;
  readonly channel: string;
  /** The message object exactly as the wire carried it. */
  readonly message: Record<string, unknown>;
  /** Index of the instance that delivered it. */
  readonly via: number;
}

export type Transport = "longpoll" | "websocket" | "sse";

export abstract class Subscriber {
  readonly received: Received[] = [];
  readonly signal = new Signal();
  gaps = 0;
  /** Times a connection failed and the client resumed elsewhere. */
  failovers = 0;
  readonly problems: string[] = [];
  protected closed = false;
  private readonly home: number;
  private resumeAfter = 0;

  constructor(
    readonly transport: Transport,
    protected readonly urls: readonly string[],
    protected at: number,
    protected readonly bearer: string,
    readonly channels: readonly string[],
    public cursor: string | null,
  ) {
    this.home = at;
  }

  /** Transport and the instance it started on, e.g. `sse@A`. */
  get label(): string {
    return `${this.transport}@${"ABCDE"[this.home]}`;
  }

  get ids(): string[] {
    return this.received.map((r) => r.id);
  }

  protected deliver(channel: string, message: Record<string, unknown>): void {
    const id = message.message_id;
    if (typeof id !== "string") {
      this.problems.push(`message without message_id: ${JSON.stringify(message)}`);
      return;
    }
    this.received.push({ id, channel, message, via: this.at });
    this.cursor = id;
    this.signal.notify();
    if (this.resumeAfter > 0 && this.received.length % this.resumeAfter === 0 && !this.closed) this.drop();
  }

  /**
   * From now on, after every `n` messages received, drops the connection on purpose and
   * resumes on the next instance from its cursor, as a client on a flaky network does: any
   * message it is given twice, or not at all, shows in `ids`.
   */
  resumeEvery(n: number): this {
    this.resumeAfter = n;
    return this;
  }

  /** Drops the connection; the subscriber resumes with its cursor as after a failure. */
  protected abstract drop(): void;

  /** The connection failed: resume on the next instance. */
  protected failover(why: string): void {
    this.failovers++;
    this.problems.push(`${this.label}: ${why}`);
    this.at = (this.at + 1) % this.urls.length;
  }

  /** Waits until the last message received has id `last`. */
  async reaches(last: string, timeoutMs = 20_000): Promise<void> {
    await this.signal.wait(
      () => this.cursor !== null && this.cursor >= last,
      () => `${this.label} to reach ${last} (at ${this.cursor}, ${this.received.length} received, problems: ${this.problems.slice(-3).join(" | ")})`,
      timeoutMs,
    );
  }

  async count(n: number, timeoutMs = 20_000): Promise<void> {
    await this.signal.wait(
      () => this.received.length >= n,
      () => `${this.label} to receive ${n} messages (has ${this.received.length})`,
      timeoutMs,
    );
  }

  abstract close(): void;
}

interface PollAnswer {
  channel: string | null;
  message: Record<string, unknown> | null;
  gap?: boolean;
  messages?: { channel: string; message: Record<string, unknown> }[];
}

/**
 * Tryton's client: `POST /<db>/bus` with `last_message`, one message per answer (or up to
 * `maxMessages` with the batch extension), re-polling at once.
 */
export class LongPollSubscriber extends Subscriber {
  private abort = new AbortController();
  private moving = false;

  constructor(
    urls: readonly string[],
    at: number,
    bearer: string,
    channels: readonly string[],
    cursor: string | null,
    private readonly maxMessages?: number,
  ) {
    super("longpoll", urls, at, bearer, channels, cursor);
    void this.run();
  }

  /** Continues on instance `i` with the cursor it has: the parked poll is abandoned. */
  moveTo(i: number): void {
    this.at = i;
    this.moving = true;
    this.abort.abort();
  }

  /** A poll carries its cursor anyway: the next one goes to the next instance. */
  protected drop(): void {
    this.failover("resumed on purpose");
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.abort = new AbortController();
      const url = this.urls[this.at]!;
      try {
        const res = await fetch(`${url}/${DB}/bus`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${this.bearer}` },
          body: JSON.stringify({
            last_message: this.cursor,
            channels: this.channels,
            ...(this.maxMessages ? { max_messages: this.maxMessages } : {}),
          }),
          signal: this.abort.signal,
        });
        const text = await res.text();
        if (res.status !== 200) {
          this.failover(`HTTP ${res.status} ${text.slice(0, 200)}`);
          await backoff(50);
          continue;
        }
        const answer = JSON.parse(text) as PollAnswer;
        if (answer.gap) this.gaps++;
        const list = answer.messages ?? (answer.message ? [{ channel: answer.channel!, message: answer.message }] : []);
        for (const m of list) this.deliver(m.channel, m.message);
      } catch (e) {
        if (this.closed) return;
        if (this.moving) {
          this.moving = false;
          continue;
        }
        this.failover(String((e as Error).cause ?? e));
        await backoff(50);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
  }
}

interface PushFrame {
  type?: string;
  id?: unknown;
  error?: string;
  data?: { group?: string; message?: Record<string, unknown>; gap?: boolean };
}

/** rohrpost over `GET /<db>/ws?token=`: `subscribe` with `last_message`, pushes as `subscription-update`. */
export class WsSubscriber extends Subscriber {
  private ws: WebSocket | null = null;
  private requestId = 0;

  constructor(urls: readonly string[], at: number, bearer: string, channels: readonly string[], cursor: string | null) {
    super("websocket", urls, at, bearer, channels, cursor);
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const url = `${this.urls[this.at]!.replace(/^http/, "ws")}/${DB}/ws?token=${encodeURIComponent(this.bearer)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.on("open", () => {
      ws.send(JSON.stringify({ id: ++this.requestId, type: "subscribe", data: { channels: this.channels, last_message: this.cursor } }));
    });
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as PushFrame;
      if (frame.error !== undefined) this.problems.push(`${this.label}: error frame ${JSON.stringify(frame)}`);
      if (frame.type !== "subscription-update" || frame.data === undefined) return;
      if (frame.data.gap) this.gaps++;
      if (frame.data.message !== undefined) this.deliver(frame.data.group!, frame.data.message);
    });
    ws.on("error", () => {}); // "close" follows
    ws.once("close", (code) => {
      if (this.closed) return;
      this.failover(`closed ${code}`);
      void backoff(50).then(() => this.connect());
    });
  }

  protected drop(): void {
    this.ws?.terminate();
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }
}

/** `GET /<db>/events?channels=…&token=…` with `Last-Event-ID`, as EventSource does on reconnect. */
export class SseSubscriber extends Subscriber {
  private req: ClientRequest | null = null;

  constructor(urls: readonly string[], at: number, bearer: string, channels: readonly string[], cursor: string | null) {
    super("sse", urls, at, bearer, channels, cursor);
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const url = new URL(`${this.urls[this.at]!}/${DB}/events`);
    url.searchParams.set("channels", this.channels.join(","));
    url.searchParams.set("token", this.bearer);
    let ended = false;
    const reconnect = (why: string): void => {
      if (ended || this.closed) return;
      ended = true;
      this.failover(why);
      void backoff(50).then(() => this.connect());
    };
    const req = httpRequest(url, {
      agent: false,
      headers: { accept: "text/event-stream", ...(this.cursor !== null ? { "last-event-id": this.cursor } : {}) },
    });
    this.req = req;
    req.on("error", (e) => reconnect(String(e)));
    req.on("response", (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on("end", () => reconnect(`HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          this.event(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
      res.on("error", (e) => reconnect(String(e)));
      res.on("close", () => reconnect("stream ended"));
    });
    req.end();
  }

  private event(block: string): void {
    let name = "message";
    let data = "";
    let id: string | null = null;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "id") id = value;
    }
    if (name === "gap") this.gaps++;
    else if (name === "message" && data !== "") {
      const { channel, message } = JSON.parse(data) as { channel: string; message: Record<string, unknown> };
      if (id !== message.message_id) this.problems.push(`${this.label}: event id ${id} for ${String(message.message_id)}`);
      this.deliver(channel, message);
    }
  }

  protected drop(): void {
    this.req?.destroy();
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

/** One subscriber per transport on each instance, on `channels`, from `cursor`. */
export function subscribeEverywhere(
  urls: readonly string[],
  bearer: string,
  channels: readonly string[],
  cursor: string | null,
): Subscriber[] {
  return urls.flatMap((_, i) => [
    new LongPollSubscriber(urls, i, bearer, channels, cursor),
    new WsSubscriber(urls, i, bearer, channels, cursor),
    new SseSubscriber(urls, i, bearer, channels, cursor),
  ]);
}
