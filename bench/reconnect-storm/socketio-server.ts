/**
 * The peer of bench/reconnect-storm: Socket.IO 4.8 as an application would use it for the
 * same job. Clients join the room "storm" on connection; `POST /publish` (JSON body) is
 * emitted to the room; `GET /healthz` answers. Keeps nothing: a restart forgets every
 * message (its connection-state recovery lives in the server's memory, so it cannot bridge
 * a restart either). argv: <port>. Sends `{ url }` to the parent once listening.
 */
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") return void res.end('{"status":"ok"}');
  if (req.method !== "POST" || req.url !== "/publish") return void res.writeHead(404).end();
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c: string) => (body += c));
  req.on("end", () => {
    io.to("storm").emit("m", JSON.parse(body));
    res.end("{}");
  });
});
const io = new Server(http, { transports: ["websocket"], serveClient: false });
io.on("connection", (socket) => void socket.join("storm"));
http.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const address = http.address() as { port: number };
  process.send!({ url: `http://127.0.0.1:${address.port}` });
});
