/**
 * SQLite shared by two processes (issue 9, item 1): how long after another process's
 * publish is acknowledged do the subscribers of `tidings serve` get it? An application
 * process publishes with `createBus({ store: "sqlite:<file>" })` on the file that a
 * `tidings serve` serves; in the same run a second publisher publishes through that server
 * itself (the peer: what subscribers see without a second process), first each alone, then
 * both at once. Subscribers of every transport, in processes of their own, take every channel.
 *
 *   node --import tsx bench/sqlite-processes/run.ts [--rate 50] [--seconds 20] [--connections 2]
 *
 * --rate is messages per second of each publisher, --seconds the length of each phase.
 *
 * Delays are from the publish's acknowledgment in its publisher to each delivery (wall
 * clocks of one machine), and from its send; p50 / p99 / max over every delivery.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { signToken } from "../../src/auth/tokens.js";
import { DEFAULT_WATCH_INTERVAL_MS } from "../../src/stores/sqlite/commit-watcher.js";
import type { FromSubscriber, Transport } from "../scale-out/ipc.js";
import { Worker } from "../scale-out/worker.js";
import { startServe, stopProcess } from "../serve-process.js";
import type { FromPublisher, Via } from "./publisher.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const RATE = Number(arg("rate", "50"));
const SECONDS = Number(arg("seconds", "20"));
const CONNECTIONS = Number(arg("connections", "2"));
const SECRET = randomBytes(32).toString("base64url");
const DB = "bench";
const HERE = new URL("./", import.meta.url);
const TRANSPORTS: readonly Transport[] = ["websocket", "sse", "longpoll"];

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

const fmt = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

const dir = mkdtempSync(join(tmpdir(), "tidings-bench-sqlite-"));
const store = `sqlite:${join(dir, "tidings.db")}`;
const load0 = loadavg()[0]!;
const server = await startServe(["--store", store, "--data-dir", dir, "--secret", SECRET, "--databases", DB, "--log-level", "warn"]);
const subs: Worker<FromSubscriber>[] = [];
const pubs: Worker<FromPublisher>[] = [];
try {
  const [subToken, pubToken] = await Promise.all([
    signToken(SECRET, { db: DB, user: "bench-subscriber", channels: ["*"] }),
    signToken(SECRET, { db: DB, user: "bench-publisher", role: "publisher" }),
  ]);
  // Alone, each publisher shows its own delay; together, the server's own appends also wake
  // it to read the file, and with it the other process's appends.
  const phases: ReadonlyArray<readonly Via["kind"][]> = [["bus"], ["server"], ["bus", "server"]];
  const channelOf = (phase: number, via: Via["kind"]): string => `${via}-${phase}`;
  const channels = phases.flatMap((vias, k) => vias.map((v) => channelOf(k, v)));
  for (const transport of TRANSPORTS) {
    const w = new Worker<FromSubscriber>(new URL("../scale-out/subscriber.ts", HERE));
    subs.push(w);
    w.send({
      type: "start",
      config: { urls: [server.url], db: DB, token: subToken, channel: channels[0]!, moreChannels: channels.slice(1), transport, connections: CONNECTIONS, keepTimes: true },
    });
  }
  await Promise.all(subs.map((s) => s.next("ready")));

  const vias: Record<Via["kind"], Via> = { bus: { kind: "bus", store }, server: { kind: "server", url: server.url, token: pubToken } };
  const byId = new Map<string, { phase: number; via: Via["kind"]; sentAt: number; ackedAt: number }>();
  for (const [phase, kinds] of phases.entries()) {
    await Promise.all(
      kinds.map(async (via) => {
        const w = new Worker<FromPublisher>(new URL("publisher.ts", HERE));
        pubs.push(w);
        w.send({ type: "run", via: vias[via], db: DB, channel: channelOf(phase, via), rate: RATE, seconds: SECONDS });
        for (const [id, sentAt, ackedAt] of (await w.next("done", (SECONDS + 60) * 1000)).acks) byId.set(id, { phase, via, sentAt, ackedAt });
        w.kill();
      }),
    );
  }
  const total = byId.size;
  for (const s of subs) s.send({ type: "expect", perConnection: total });
  await Promise.all(subs.map((s) => s.next("reached", 60_000)));
  for (const s of subs) s.send({ type: "report" });
  const stats = await Promise.all(subs.map((s) => s.next("stats")));

  console.log(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}; load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end; ${new Date().toISOString()}; --rate ${RATE} --seconds ${SECONDS} per publisher and phase, ${CONNECTIONS} connections per transport; commit watch interval ${DEFAULT_WATCH_INTERVAL_MS} ms`,
  );
  console.log("");
  console.log("| phase | published by | deliveries | ack → delivery p50 / p99 / max, ms | p99 by transport (WebSocket · SSE · long-poll), ms | send → delivery p50 / p99 / max, ms |");
  console.log("|---|---|---:|---|---|---|");
  const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
  const three = (xs: number[]): string => `${fmt(quantile(xs, 0.5))} / ${fmt(quantile(xs, 0.99))} / ${fmt(xs.at(-1)!)}`;
  for (const [phase, kinds] of phases.entries()) {
    for (const via of kinds) {
      const fromAck: number[] = [];
      const fromSend: number[] = [];
      const p99s: string[] = [];
      for (const s of stats) {
        const mine: number[] = [];
        for (const [id, at] of s.times ?? []) {
          const p = byId.get(id);
          if (p?.phase !== phase || p.via !== via) continue;
          mine.push(at - p.ackedAt);
          fromSend.push(at - p.sentAt);
        }
        fromAck.push(...mine);
        p99s.push(fmt(quantile(sorted(mine), 0.99)));
      }
      const who = via === "bus" ? "another process (createBus on the file)" : "the server itself (POST /publish)";
      const a = sorted(fromAck);
      console.log(`| ${kinds.length > 1 ? "both at once" : "alone"} | ${who} | ${a.length.toLocaleString("en-US")} | ${three(a)} | ${p99s.join(" · ")} | ${three(sorted(fromSend))} |`);
    }
  }
  const disorder = stats.reduce((n, s) => n + s.outOfOrder, 0);
  const short = stats.filter((s) => s.minPerConnection < total).length;
  console.log("");
  console.log(`${total} messages published; out of order ${disorder}; connections short of a message ${short}`);
} finally {
  for (const w of [...subs, ...pubs]) w.kill();
  await stopProcess(server.child);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
