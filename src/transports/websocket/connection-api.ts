import type { TidingsBus } from "../../bus.js";
import type { Identity } from "../../core/identity.js";
import type { PacedStream } from "../../core/paced-stream.js";
import type { TidingsOptions } from "../../options.js";
import type { ServerContext } from "../http/context.js";
import type { Outbox } from "./outbox.js";

/**
 * One WebSocket connection as its built-in handlers, request contexts and subscription
 * sinks see it. `Connection` implements it; they depend on this, not on the class, so
 * that the connection can import them without a cycle.
 */
export interface ConnectionApi {
  readonly id: string;
  readonly db: string;
  /** The client's address (behind trusted proxies). */
  readonly address: string;
  readonly identity: Identity | null;
  readonly server: ServerContext;
  readonly bus: TidingsBus;
  readonly options: TidingsOptions;
  readonly outbox: Outbox;
  /** Takes new credentials; returns the channels dropped because the new identity may not read them. */
  adopt(identity: Identity, token: string | null): Promise<string[]>;
  subscribe(channels: readonly string[], after: string | null, started: (gap: boolean) => void): Promise<void>;
  unsubscribe(channels: readonly string[]): void;
  streamFailed(stream: PacedStream, error: unknown, replied: boolean): void;
  /** Bytes of the outbox under which a paced stream may send again. */
  lowWater(): number;
  sendText(text: string): void;
  onClose(callback: () => void): void;
}
