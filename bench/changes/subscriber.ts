/**
 * A subscriber of bench/changes/latency.ts in a process of its own: over WebSocket, through
 * the SDK (`createClient`) for tidings or a bare `ws` client for the NOTIFY peer. Records the
 * receipt time of each change as [tx, epoch ms]; sends `{ ready }` once subscribed and
 * `{ got }` when the parent asks with "report".
 * argv: tidings <url> <token> <channel> | peer <ws url>
 */
import WebSocket from "ws";
import { createClient, type BusMessage } from "../../src/client/index.js";
import { BENCH_DB, epochMs } from "./constants.js";

const [kind, url, token, channel] = process.argv.slice(2) as [string, string, string, string];
const got: Array<[number, number]> = [];
let close: () => void = () => {};

if (kind === "tidings") {
  const client = createClient({ url, db: BENCH_DB, token, transports: ["websocket"], WebSocket: WebSocket as never });
  const sub = client.subscribe(channel, (m: BusMessage) => {
    const data = m.data as { object: { tx: number } };
    got.push([data.object.tx, epochMs()]);
  });
  await sub.ready;
  close = () => client.close();
} else if (kind === "peer") {
  const ws = new WebSocket(url);
  ws.on("message", (data: Buffer) => got.push([(JSON.parse(data.toString()) as { tx: number }).tx, epochMs()]));
  await new Promise((ok, fail) => ws.once("open", ok).once("error", fail));
  close = () => ws.close();
}
process.send!({ ready: true });
process.on("message", (m) => {
  if (m !== "report") return;
  process.send!({ got }, () => {
    close();
    process.exit(0);
  });
});
