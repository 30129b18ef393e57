/**
 * The client side of the commands bench, in its own process: serves `bench:<n>` with a
 * no-op method through the SDK (WebSocket or long-polling), and says "ready" on stdout.
 */
import WebSocket from "ws";
import { connect } from "../../src/client/index.js";

const [url, token, address, transport] = process.argv.slice(2) as [string, string, string, string];
const client = connect({
  url,
  db: "bench",
  token,
  transport: transport === "longpoll" ? "longpoll" : "websocket",
  WebSocket,
  maxInFlight: 64,
});
client.on("error", (e) => process.stderr.write(`client error: ${e.message} ${String((e as { cause?: unknown }).cause ?? "")}\n`));
await client.expose(address, { noop: () => null });
process.stdout.write("ready\n");
process.on("SIGTERM", () => void client.close().then(() => process.exit(0)));
