import type { ServerResponse } from "node:http";
import type { ServerContext } from "./context.js";
import { route, type RouteSpec } from "./router.js";
import { sendJson } from "./respond.js";
import { handleMetrics } from "./metrics-route.js";
import { handleNotify, handlePublish } from "./publish-routes.js";
import { handleChanges } from "./change-routes.js";
import { commandRoutes } from "./command-routes.js";
import { adminRoutes } from "../../admin/routes.js";
import { clientRoutes } from "./client-routes.js";
import { handleBusPoll } from "./longpoll-route.js";
import { handleEvents } from "../sse/events-route.js";
import { openApiDocument } from "./openapi.js";
import { asyncApiDocument } from "./asyncapi.js";
import { PUBLISH_BODY } from "../../protocol/publish-body.js";
import { CHANGES_BODY, NOTIFY_BODY, POLL_BODY } from "../../protocol/bodies.js";

/**
 * Every HTTP route of a server, in one table: method, path, who may call it, its body
 * schema and its handler. The router matches on it in this order, and `GET /openapi.json`
 * describes it (./openapi.ts).
 */
export function httpRoutes(server: ServerContext): RouteSpec[] {
  const routes: RouteSpec[] = [
    route({ method: "GET", path: "/healthz", role: "public", summary: "Liveness: 200 while the process runs", handler: ({ res }) => sendJson(res, 200, { status: "ok" }) }),
    route({
      method: "GET",
      path: "/readyz",
      role: "public",
      summary: "Readiness: 503 while draining",
      handler: ({ res }) => (server.draining ? sendJson(res, 503, { status: "draining" }) : sendJson(res, 200, { status: "ready" })),
    }),
    route({ method: "GET", path: "/metrics", role: "metrics", summary: "Prometheus metrics", produces: "text/plain", handler: (ctx) => handleMetrics(server, ctx) }),
    route({ method: "POST", path: "/:db/bus", role: "subscriber", summary: "Tryton's long-poll: the next message after last_message", body: POLL_BODY, handler: (ctx) => handleBusPoll(server, ctx) }),
    route({ method: "POST", path: "/:db/publish", role: "publisher", summary: "Publish a message, or several atomically", body: PUBLISH_BODY, handler: (ctx) => handlePublish(server, ctx) }),
    route({ method: "POST", path: "/:db/notify", role: "publisher", summary: "Send a Tryton notification to a user or client", body: NOTIFY_BODY, handler: (ctx) => handleNotify(server, ctx) }),
    route({ method: "POST", path: "/:db/changes", role: "publisher", summary: "Announce model changes (create, update, delete)", body: CHANGES_BODY, handler: (ctx) => handleChanges(server, ctx) }),
    route({
      method: "GET",
      path: "/:db/events",
      role: "subscriber",
      summary: "Server-Sent Events of channels",
      produces: "text/event-stream",
      query: { channels: "comma list of channels", channel: "a channel (repeatable)", last_message: "resume after this message_id", token: "a token, for EventSource" },
      handler: (ctx) => handleEvents(server, ctx),
    }),
    ...commandRoutes(server),
    ...adminRoutes(server),
    ...clientRoutes(),
  ];
  let openApi: string | undefined;
  let asyncApi: string | undefined;
  routes.push(
    route({
      method: "GET",
      path: "/openapi.json",
      role: "public",
      summary: "This API, as an OpenAPI 3.1 document",
      handler: ({ res }) => sendDocument(res, (openApi ??= JSON.stringify(openApiDocument(routes)))),
    }),
    route({
      method: "GET",
      path: "/asyncapi.json",
      role: "public",
      summary: "The WebSocket and SSE wires, as an AsyncAPI 3.0 document",
      handler: ({ res }) => sendDocument(res, (asyncApi ??= JSON.stringify(asyncApiDocument()))),
    }),
  );
  return routes;
}

function sendDocument(res: ServerResponse, document: string): void {
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(document) });
  res.end(document);
}
