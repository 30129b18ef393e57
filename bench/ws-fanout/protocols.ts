import type { RawClient } from "./raw-client.js";

/** The secret the tidings peer signs with; the runner makes the tokens. */
export const BENCH_SECRET = "bench-secret-bench-secret-bench-secret-0123";

/** The three servers compared, and how a raw client speaks to each. */
export type PeerKind = "tidings" | "ws" | "socket.io";

export interface ClientProtocol {
  readonly path: string;
  /** Sent right after the upgrade. */
  readonly hello: readonly string[];
  /**
   * Classifies a text frame: "ready" (the client may count from now), "message" (a
   * broadcast), or anything else (ignored). May answer on the client (Engine.IO pings).
   */
  classify(client: RawClient, buf: Buffer, start: number, end: number): "ready" | "message" | "other";
}

const SUBSCRIBE_REPLY = Buffer.from('{"id":1,"type":"subscribe"');
const PUSH = Buffer.from('{"type":"subscription-update"');

function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return end - start >= prefix.length && buf.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
}

export function subscriberProtocol(kind: PeerKind, token: string): ClientProtocol {
  switch (kind) {
    case "tidings":
      return {
        path: `/bench/ws?token=${token}`,
        hello: ['{"id":1,"type":"subscribe","data":{"channels":["bench"]}}'],
        classify: (_c, buf, start, end) =>
          startsWith(buf, start, end, PUSH) ? "message" : startsWith(buf, start, end, SUBSCRIBE_REPLY) ? "ready" : "other",
      };
    case "ws":
      return { path: "/", hello: [], classify: () => "message" };
    case "socket.io":
      return {
        path: "/socket.io/?EIO=4&transport=websocket",
        hello: [],
        classify: (client, buf, start, end) => {
          // Engine.IO packet types: 0 open, 2 ping, 4 message; Socket.IO: 0 connect, 2 event.
          const a = buf[start];
          const b = end - start > 1 ? buf[start + 1] : -1;
          if (a === 0x34 && b === 0x32) return "message"; // 42["m",...]
          if (a === 0x32 && end - start === 1) {
            client.sendText("3"); // pong
            return "other";
          }
          if (a === 0x30) {
            client.sendText("40"); // connect to the default namespace
            return "other";
          }
          if (a === 0x34 && b === 0x30) return "ready"; // 40{"sid":...}
          return "other";
        },
      };
  }
}

export interface PublisherProtocol {
  readonly path: string;
  readonly hello: readonly string[];
  frame(messageJson: string, seq: number): string;
}

export function publisherProtocol(kind: PeerKind, token: string): PublisherProtocol {
  switch (kind) {
    case "tidings":
      return {
        path: `/bench/ws?token=${token}`,
        hello: [],
        frame: (m, seq) => `{"id":${seq},"type":"publish","data":{"channel":"bench","message":${m}}}`,
      };
    case "ws":
      return { path: "/pub", hello: [], frame: (m) => m };
    case "socket.io":
      return { path: "/socket.io/?EIO=4&transport=websocket&role=pub", hello: ["40"], frame: (m) => `42["pub",${m}]` };
  }
}

/** The broadcast message, `bytes` long as JSON: a timestamp for latency and padding. */
export function benchMessage(seq: number, t: number, bytes: number): string {
  const head = `{"type":"bench","seq":${seq},"t":${t.toFixed(3)},"pad":"`;
  return `${head}${"x".repeat(Math.max(0, bytes - head.length - 2))}"}`;
}

const T_KEY = Buffer.from('"t":');

/** The send timestamp inside a broadcast frame, or NaN. Reads digits in place, no decoding. */
export function readTimestamp(buf: Buffer, start: number, end: number): number {
  const at = buf.indexOf(T_KEY, start);
  if (at < 0 || at >= end) return NaN;
  let i = at + T_KEY.length;
  let value = 0;
  let scale = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x2e) scale = 1;
    else if (c >= 0x30 && c <= 0x39) {
      if (scale === 0) value = value * 10 + (c - 0x30);
      else {
        scale /= 10;
        value += (c - 0x30) * scale;
      }
    } else break;
  }
  return value;
}
