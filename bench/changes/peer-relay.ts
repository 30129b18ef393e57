/**
 * The hand-written peer of bench/changes/latency.ts: what an application writes without a
 * bus. A FOR EACH ROW trigger (created by the runner) sends `pg_notify('bench_peer', row)`;
 * this process LISTENs on one connection and forwards each payload to every WebSocket
 * client as it is. argv: <postgres url>. Sends `{ url }` once listening.
 */
import postgres from "postgres";
import { WebSocketServer, type WebSocket } from "ws";

const sql = postgres(process.argv[2]!, { max: 1, onnotice: () => {} });
const clients = new Set<WebSocket>();
const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
wss.on("connection", (ws) => {
  clients.add(ws);
  ws.on("close", () => clients.delete(ws));
});
await new Promise((ok) => wss.once("listening", ok));
await sql.listen("bench_peer", (payload) => {
  for (const c of clients) c.send(payload);
});
const address = wss.address() as { port: number };
process.send!({ url: `ws://127.0.0.1:${address.port}` });
process.once("SIGTERM", () => void sql.end({ timeout: 2 }).then(() => process.exit(0)));
