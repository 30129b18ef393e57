/**
 * An event handler property. Declared through a method so its parameter is compared
 * bivariantly: the browser's and `ws`'s handlers take richer event types than we read.
 */
type EventHandler<E> = { handle(event: E): void }["handle"];

/** The part of a WebSocket the SDK uses: the browser's, or `ws` in Node (pass it as `WebSocket`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: EventHandler<unknown> | null;
  onclose: EventHandler<{ readonly code: number; readonly reason: string }> | null;
  onerror: EventHandler<unknown> | null;
  onmessage: EventHandler<{ readonly data: unknown }> | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;
