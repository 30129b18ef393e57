/**
 * Socket.IO 4.8 room broadcast: subscribers join the room "bench" on connection; the
 * publisher's "pub" events are emitted to the room.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { serveRunner } from "./server-process.js";

const http = createServer();
const io = new Server(http, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => {
  if (socket.handshake.query.role === "pub") {
    socket.on("pub", (message: unknown) => io.to("bench").emit("m", message));
  } else {
    void socket.join("bench");
  }
});
http.listen(0, "127.0.0.1", () => serveRunner((http.address() as AddressInfo).port));
