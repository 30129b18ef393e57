// The public surface of the `tidings` package: everything else is internal.
export { createBus, TidingsBus as Bus, type BusInput } from "./bus.js";
export type { PublishItem } from "./core/bus.js";
export {
  publishInTransaction,
  publishManyInTransaction,
  isTransactionalStore,
  type TransactionalStore,
  type SqlHandle,
} from "./core/transactional.js";
export { createServer, TidingsServer, type ServerInput } from "./server.js";
export { resolveOptions, DEFAULTS, type TidingsOptions, type TidingsOptionsInput } from "./options.js";
export { TidingsError, ERRORS, type ErrorCode } from "./errors.js";
export type { Identity, Role } from "./core/identity.js";
export type { AccessRule } from "./core/access.js";
export type { Notification } from "./core/notify.js";
export {
  ChangeService,
  type ModelOptions,
  type GroupRule,
  type ChangeOptions,
  type UpdateOptions,
  type ChangeInput,
} from "./core/changes.js";
export { CHANGE_MESSAGE_TYPE, type ChangeType, type ChangeObject, type ChangeData, type ChangeMessage } from "./protocol/changes.js";
export type { Store, StoredMessage } from "./stores/store.js";
export { MemoryStore } from "./stores/memory/index.js";
export { openStoreUrl } from "./stores/open-store.js";
export { signToken, verifyToken } from "./auth/tokens.js";
export { StaticSessionVerifier, type SessionVerifier, type TrytonSession } from "./auth/tryton-session.js";
export {
  CommandService,
  type SendOptions,
  type SentCommand,
  type WaitOptions,
  type ListFilter,
} from "./commands/service.js";
export { outcomeValue, type CommandProxy } from "./commands/proxy.js";
export type { CommandRecord, CommandState, CommandError } from "./stores/store.js";
export type { CommandView, CommandDelivery } from "./protocol/commands.js";
export type { Handler, HandlerContext, HandlerRequest } from "./core/handlers.js";
export { CLOSE as WS_CLOSE_CODES } from "./transports/websocket/close-codes.js";
export type { WebSocketTransport, WebSocketEvents } from "./transports/websocket/index.js";
export { TrytonPostgresVerifier } from "./auth/tryton-pg-verifier.js";
