import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { TidingsError } from "../../errors.js";

export interface ConnectionLimits {
  /** TCP connections open at once (HTTP and WebSocket alike); 0: no cap. */
  readonly maxConnections: number;
  /** TCP connections open at once from one remote address; 0: no cap. */
  readonly maxConnectionsPerAddress: number;
  /** Requests of one connection received and not yet answered (pipelining); more close it. */
  readonly maxPipelinedRequests: number;
}

export type RefusalReason = "total" | "per_address" | "pipelining";

const kInflight = Symbol("tidings.inflight");
const kRefused = Symbol("tidings.refused");
type GuardedSocket = Socket & { [kInflight]?: number; [kRefused]?: true };

/** Whether the connection was refused (at accept or for pipelining): its requests and upgrades are ignored. */
export function isRefused(socket: object): boolean {
  return (socket as GuardedSocket)[kRefused] === true;
}

function onResponseClosed(this: ServerResponse): void {
  const socket = this.req.socket as GuardedSocket;
  socket[kInflight] = (socket[kInflight] ?? 1) - 1;
}

/**
 * Caps what one peer can make the server hold: connections in total and per address
 * (every socket is a file descriptor and buffers), and requests pipelined on one
 * connection. Node pauses a pipelining socket only once answers are written; handlers
 * that answer asynchronously (a store read, /metrics) let a client queue thousands of
 * requests, and their answers, in one write.
 */
export class ConnectionGuard {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly refused: (reason: RefusalReason) => void,
  ) {}

  get open(): number {
    return this.total;
  }

  /**
   * A new TCP connection: counted, or answered 503 and closed when a cap is reached.
   * Returns false when refused (the socket is being closed).
   */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? "";
    const mine = this.byAddress.get(address) ?? 0;
    const { maxConnections, maxConnectionsPerAddress } = this.limits;
    let reason: RefusalReason | null = null;
    if (maxConnections > 0 && this.total >= maxConnections) reason = "total";
    else if (maxConnectionsPerAddress > 0 && mine >= maxConnectionsPerAddress) reason = "per_address";
    if (reason !== null) {
      this.refuse(socket, reason);
      return false;
    }
    this.total++;
    this.byAddress.set(address, mine + 1);
    socket.once("close", () => {
      this.total--;
      const n = (this.byAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.byAddress.delete(address);
      else this.byAddress.set(address, n);
    });
    return true;
  }

  /**
   * A request arrived: false when its connection must not be served (refused at accept, or
   * past maxPipelinedRequests, in which case it is destroyed: HTTP/1.1 answers in order, so
   * there is no way to refuse only the excess requests).
   */
  requestStarted(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket as GuardedSocket;
    if (socket[kRefused] === true) return false;
    const n = (socket[kInflight] ?? 0) + 1;
    if (n > this.limits.maxPipelinedRequests) {
      // Requests already parsed from the same read still arrive: they are dropped uncounted.
      socket[kRefused] = true;
      this.refused("pipelining");
      socket.destroy();
      return false;
    }
    socket[kInflight] = n;
    // "close" follows "finish" (the answer handed to the kernel) or an aborted connection.
    res.once("close", onResponseClosed);
    return true;
  }

  private refuse(socket: GuardedSocket, reason: RefusalReason): void {
    socket[kRefused] = true;
    this.refused(reason);
    const e = new TidingsError(
      "TIDINGS_ERR_LIMIT_CONNECTIONS",
      reason === "total" ? "The server has too many open connections; retry shortly." : "Too many open connections from your address.",
    );
    const body = JSON.stringify(e.toJSON());
    socket.on("error", () => socket.destroy());
    // Whatever the client sends is not parsed into requests (requestStarted refuses them).
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`,
    );
    socket.once("finish", () => socket.destroy());
    setTimeout(() => socket.destroy(), 2_000).unref();
  }
}
