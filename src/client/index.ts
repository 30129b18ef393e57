// The public surface of `tidings/client`: browser-safe (no Node imports), platform through options.
import { LongPollCommandClient } from "./longpoll.js";
import { WebSocketCommandClient } from "./websocket.js";
import type { ClientOptions, CommandClient } from "./types.js";

export { createClient, TidingsClient } from "./client.js";
export type {
  ConnectedEvent,
  CreateClientOptions,
  GapEvent,
  NotificationMessage,
  ReconnectingEvent,
  TidingsClientEventMap,
} from "./client.js";
export { CommandSender, createCommandSender, isFinal } from "./commands.js";
export type { CommandSenderOptions, ListFilter, SendOptions, WaitOptions } from "./commands.js";
export type { CommandState, CommandView } from "../protocol/commands.js";
export { Subscription } from "./subscription.js";
export type { MessageHandler, SubscribeOptions } from "./subscription.js";
export type { BusMessage, DisconnectInfo, TransportName } from "./transports/transport.js";
export { showNotifications } from "./notifications.js";
export type { ShowNotificationsOptions } from "./notifications.js";
export type { ClientOptions, CommandClient } from "./types.js";
export { RemoteError } from "./types.js";
export type { CommandContext, CommandMethod, Methods, Outcome } from "./runner.js";
export type { WebSocketConstructor, WebSocketLike } from "./websocket-like.js";
export type { ClientEventMap } from "./events.js";
export type { CommandDelivery } from "../protocol/commands.js";
export { LongPollCommandClient, WebSocketCommandClient };

/**
 * Connects a client that only serves commands (kept for existing code; `createClient` does
 * this and more): `connect({url, db, token, WebSocket}).expose("software_dev.buildbot:5", {…})`.
 * Over WebSocket by default; `transport: "longpoll"` uses plain HTTP requests.
 */
export function connect(options: ClientOptions): CommandClient {
  return options.transport === "longpoll" ? new LongPollCommandClient(options) : new WebSocketCommandClient(options);
}
