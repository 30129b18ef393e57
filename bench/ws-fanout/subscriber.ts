/**
 * A subscriber process: opens `count` raw WebSocket connections to one server, counts the
 * broadcasts each receives and records their latency (from the timestamp inside each
 * message). Driven by the runner over IPC; reports progress every 10 ms.
 */
import { RawClient } from "./raw-client.js";
import { readTimestamp, subscriberProtocol, type PeerKind } from "./protocols.js";
import { Histogram } from "./histogram.js";

interface Config {
  readonly port: number;
  readonly kind: PeerKind;
  readonly count: number;
  readonly token: string;
}

type Command = { cmd: "phase"; latency: boolean } | { cmd: "report" } | { cmd: "exit" };

const send = (m: unknown): void => void process.send!(m);
const now = (): number => performance.timeOrigin + performance.now();

let counts = new Int32Array(0);
let total = 0;
let latency = false;
let hist = new Histogram();
let cpuStart = process.cpuUsage();
let closedUnexpectedly = 0;
const clients: RawClient[] = [];

async function start(config: Config): Promise<void> {
  counts = new Int32Array(config.count);
  const proto = subscriberProtocol(config.kind, config.token);
  let ready = 0;
  let allReady!: () => void;
  const whenReady = new Promise<void>((r) => (allReady = r));
  const open = async (i: number): Promise<void> => {
    let isReady = config.kind === "ws";
    const client = await RawClient.open(config.port, proto.path, (buf, s, e, self) => {
      const kind = proto.classify(self, buf, s, e);
      if (kind === "message") {
        counts[i]!++;
        total++;
        if (latency) hist.record(now() - readTimestamp(buf, s, e));
      } else if (kind === "ready" && !isReady) {
        isReady = true;
        if (++ready === config.count) allReady();
      }
    });
    client.onClose = () => closedUnexpectedly++;
    clients.push(client);
    for (const h of proto.hello) client.sendText(h);
    if (isReady && ++ready === config.count) allReady();
  };
  // A few hundred handshakes at a time: more would overflow the server's listen backlog.
  for (let i = 0; i < config.count; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, config.count - i) }, (_, k) => open(i + k)));
  }
  await whenReady;
  send({ type: "ready" });
  setInterval(() => send({ type: "progress", total, min: minCount(), closed: closedUnexpectedly }), 10).unref();
}

function minCount(): number {
  let min = Infinity;
  for (let i = 0; i < counts.length; i++) if (counts[i]! < min) min = counts[i]!;
  return min === Infinity ? 0 : min;
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
    case "phase":
      counts.fill(0);
      total = 0;
      latency = msg.latency;
      hist = new Histogram();
      cpuStart = process.cpuUsage();
      break;
    case "report": {
      const cpu = process.cpuUsage(cpuStart);
      send({ type: "report", total, min: minCount(), hist: hist.toJSON(), cpuMicros: cpu.user + cpu.system, closed: closedUnexpectedly });
      break;
    }
    case "exit":
      for (const c of clients) c.close();
      process.exit(0);
  }
});
