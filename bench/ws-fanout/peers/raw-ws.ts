/**
 * The baseline: a broadcast server on raw `ws`, as a Node developer writes it by hand (the
 * ws README's "broadcast to all other clients" loop). Whatever a client sends is relayed to
 * every other connected client.
 */
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { serveRunner } from "./server-process.js";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("connection", (ws) => {
  ws.on("error", () => {});
  ws.on("message", (data, isBinary) => {
    wss.clients.forEach((client) => {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
  });
});
wss.on("listening", () => serveRunner((wss.address() as AddressInfo).port));
