import { EventEmitter, once } from "node:events";
import WebSocket, { type ClientOptions } from "ws";
import type { TidingsServer } from "../../src/server.js";

/** A frame as the tests read it: rohrpost's shape, data left loose for deepEqual. */
export interface Frame {
  id?: unknown;
  type?: string;
  data?: any;
  error?: string;
}

export function wsUrl(server: TidingsServer, query: Record<string, string> = {}, db = "test"): string {
  const qs = new URLSearchParams(query).toString();
  return `${server.url.replace(/^http/, "ws")}/${db}/ws${qs ? `?${qs}` : ""}`;
}

/**
 * A WebSocket client that queues every frame it receives, for tests that speak the raw
 * wire. `next`/`waitFor` fail after a timeout instead of hanging the test run.
 */
export class FrameClient {
  private readonly frames: Frame[] = [];
  private readonly arrived = new EventEmitter();
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every text frame as received, in order (also those already taken by next/waitFor). */
  readonly log: Frame[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const frame = isBinary ? { type: "<binary>" } : (JSON.parse(data.toString()) as Frame);
      this.log.push(frame);
      this.frames.push(frame);
      this.arrived.emit("frame");
    });
    this.closed = new Promise((resolve) => {
      ws.once("close", (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.arrived.emit("frame");
      });
    });
    ws.on("error", () => {});
  }

  static async open(url: string, options: ClientOptions = {}): Promise<FrameClient> {
    const ws = new WebSocket(url, options);
    const client = new FrameClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once("error", reject);
    });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The first queued frame matching `pred` (taken out of the queue), waiting for it if needed. */
  async waitFor(pred: (f: Frame) => boolean, what = "a matching frame", timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; queued: ${JSON.stringify(this.frames).slice(0, 500)}`);
      await Promise.race([once(this.arrived, "frame"), new Promise((r) => setTimeout(r, left).unref())]);
    }
  }

  next(timeoutMs = 5000): Promise<Frame> {
    return this.waitFor(() => true, "the next frame", timeoutMs);
  }

  /** Sends a request and waits for the frame echoing its id (a reply or an error). */
  async request(frame: { id: unknown; type: string; data?: unknown; [k: string]: unknown }): Promise<Frame> {
    this.send(frame);
    return this.waitFor((f) => f.id === frame.id && f.type !== "subscription-update", `the reply to ${frame.type} ${String(frame.id)}`);
  }

  /** The next `n` pushes (subscription-update frames), in arrival order. */
  async pushes(n: number, timeoutMs = 5000): Promise<Frame[]> {
    const out: Frame[] = [];
    while (out.length < n) out.push(await this.waitFor((f) => f.type === "subscription-update", `push ${out.length + 1} of ${n}`, timeoutMs));
    return out;
  }

  /** Frames still queued. */
  get queued(): readonly Frame[] {
    return this.frames;
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** The message ids of pushes, for asserting order and completeness. */
export function ids(frames: readonly Frame[]): string[] {
  return frames.map((f) => f.data.message.message_id as string);
}

/** Publishes `n` messages `{type, n: i}` on `channel`, returning their ids in order. */
export async function publishN(server: TidingsServer, channel: string, n: number, from = 0, extra: Record<string, unknown> = {}): Promise<string[]> {
  const out: string[] = [];
  for (let i = from; i < from + n; i++) out.push(await server.bus.publish("test", channel, { type: "t", n: i, ...extra }));
  return out;
}
