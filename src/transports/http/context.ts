import type { IncomingMessage, ServerResponse } from "node:http";
import type { TidingsBus } from "../../bus.js";
import type { Identity } from "../../core/identity.js";
import type { TidingsOptions } from "../../options.js";
import type { Authenticator } from "../../auth/authenticate.js";
import type { PollLimiter } from "./poll-limiter.js";
import type { UserBytes } from "./user-bytes.js";
import type { BodyGuard } from "./body-guard.js";

/** What every transport gets from the server: the core, options, auth, limits, draining. */
export interface ServerContext {
  readonly bus: TidingsBus;
  readonly options: TidingsOptions;
  readonly authenticator: Authenticator;
  readonly polls: PollLimiter;
  /** Long-poll answer bytes per user written and not yet handed to the kernel (maxUnsentBytesPerUser). */
  readonly unsent: UserBytes;
  /** Deadline and per-user byte cap of request bodies being received (bodyTimeoutMs, maxBodyBytesPerUser). */
  readonly bodies: BodyGuard;
  /** Identity from the request's Authorization header, cookie, or `?token=` (SSE/WS only). */
  authenticate(db: string, req: IncomingMessage, queryToken?: string | null): Promise<Identity>;
  /** The client's address, behind `trustedProxies` reverse proxies (client-address.ts). */
  clientAddress(req: IncomingMessage): string;
  /** Registers a callback run when the server starts draining; returns an unregister function. */
  onDrain(callback: () => void): () => void;
  readonly draining: boolean;
  /** Answers a request with the error's status and JSON body, counted and logged like a thrown one. */
  failRequest(req: IncomingMessage, res: ServerResponse, error: unknown): void;
}
