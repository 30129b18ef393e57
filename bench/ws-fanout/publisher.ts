/**
 * The publisher process: one raw WebSocket connection sending the broadcast messages, each
 * with its send time inside. Two modes, driven by the runner over IPC: a fixed rate (for
 * latency), or up to an allowance the runner raises as the slowest subscriber catches up
 * (for throughput with bounded buffering).
 */
import { RawClient } from "./raw-client.js";
import { benchMessage, publisherProtocol, type PeerKind } from "./protocols.js";

interface Config {
  readonly port: number;
  readonly kind: PeerKind;
  readonly token: string;
  readonly messageBytes: number;
}

type Command =
  | { cmd: "rate"; perSecond: number; durationMs: number }
  | { cmd: "allow"; upTo: number }
  | { cmd: "reset" }
  | { cmd: "report" }
  | { cmd: "exit" };

const send = (m: unknown): void => void process.send!(m);
const now = (): number => performance.timeOrigin + performance.now();

let client: RawClient;
let frame: (m: string, seq: number) => string;
let bytes = 0;
let sent = 0;
let seq = 0;

function publishOne(): void {
  seq++;
  client.sendText(frame(benchMessage(seq, now(), bytes), seq));
  sent++;
}

async function start(config: Config): Promise<void> {
  const proto = publisherProtocol(config.kind, config.token);
  frame = proto.frame;
  bytes = config.messageBytes;
  client = await RawClient.open(config.port, proto.path, () => {});
  for (const h of proto.hello) client.sendText(h);
  // Socket.IO needs its connect acknowledged before events; a short pause covers it for every kind.
  await new Promise((r) => setTimeout(r, 200));
  send({ type: "ready" });
}

function runAtRate(perSecond: number, durationMs: number): void {
  sent = 0;
  const t0 = performance.now();
  const total = Math.round((perSecond * durationMs) / 1000);
  const tick = (): void => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * perSecond) / 1000) + 1);
    while (sent < due) publishOne();
    if (sent >= total) send({ type: "done", sent });
    else setTimeout(tick, Math.max(0, ((sent * 1000) / perSecond) - (performance.now() - t0)));
  };
  tick();
}

process.on("message", (msg: Config | Command) => {
  if ("port" in msg) {
    start(msg).catch((e: unknown) => {
      send({ type: "error", error: String(e) });
      process.exit(1);
    });
    return;
  }
  switch (msg.cmd) {
    case "rate":
      runAtRate(msg.perSecond, msg.durationMs);
      break;
    case "allow":
      while (sent < msg.upTo) publishOne();
      break;
    case "reset":
      sent = 0;
      break;
    case "report":
      send({ type: "sent", sent });
      break;
    case "exit":
      client.close();
      process.exit(0);
  }
});
