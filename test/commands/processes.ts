import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

export type Event = Record<string, unknown> & { readonly event: string };

/** A child `node --import tsx <script>` that reports JSON lines on stdout. */
export class NodeProcess {
  readonly events: Event[] = [];
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;
  private stderr = "";

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    child.stderr!.on("data", (c: Buffer) => (this.stderr += c.toString()));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const e = JSON.parse(line) as Event;
        if (typeof e.event !== "string") return;
        this.events.push(e);
      } catch {
        return;
      }
      for (const w of [...this.waiters]) w();
    });
    void this.exited.then(() => {
      for (const w of [...this.waiters]) w();
    });
  }

  static start(script: string, env: Record<string, string>): NodeProcess {
    const child = spawn(process.execPath, ["--import", "tsx", `${FIXTURES}${script}`], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    return new NodeProcess(child);
  }

  /** Resolves with the first event (past or future) for which `match` holds; rejects if the process exits first or past `timeoutMs`. */
  waitFor(match: (e: Event) => boolean, what = "an event", timeoutMs = 30_000): Promise<Event> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} within ${timeoutMs} ms; stderr:\n${this.stderr}`));
      }, timeoutMs);
      const check = (): boolean => {
        const found = this.events.find(match);
        if (found !== undefined) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        }
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`process exited before ${what}; stderr:\n${this.stderr}`));
          return true;
        }
        return false;
      };
      if (!check()) this.waiters.add(check);
    });
  }

  count(match: (e: Event) => boolean): number {
    return this.events.filter(match).length;
  }

  /** Writes a line to the child's stdin. */
  tell(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the process did not exit within 30 s of ${signal}`)), 30_000);
    });
    await Promise.race([this.exited, late]).finally(() => clearTimeout(timer));
  }
}

/** A server process; resolves once it listens. */
export async function startServerProcess(options: Record<string, unknown>): Promise<{ proc: NodeProcess; url: string }> {
  const proc = NodeProcess.start("server.ts", { TIDINGS_TEST_OPTIONS: JSON.stringify(options) });
  const e = await proc.waitFor((x) => x.event === "listening", "listening");
  return { proc, url: e.url as string };
}

/** A client process serving `address` with the SDK over `transport`. */
export function startClientProcess(opts: {
  url: string;
  token: string;
  address: string;
  transport: "websocket" | "longpoll";
  db?: string;
}): NodeProcess {
  return NodeProcess.start("client.ts", {
    TIDINGS_TEST_URL: opts.url,
    TIDINGS_TEST_TOKEN: opts.token,
    TIDINGS_TEST_ADDRESS: opts.address,
    TIDINGS_TEST_TRANSPORT: opts.transport,
    TIDINGS_TEST_DB: opts.db ?? "test",
  });
}

/**
 * A TCP relay in front of a server: `cut()` drops every connection; `target` may change (a
 * restarted server); `refuseUpgrades` closes that many of the next WebSocket handshakes.
 */
export class Relay {
  /** The next this many WebSocket handshakes are refused (their socket closed), as in a reconnect storm. */
  refuseUpgrades = 0;
  refusedUpgrades = 0;
  /** While set, every new connection is closed at once, as by a server that is down. */
  refuseConnections = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(
    public target: number,
    private readonly host: string,
  ) {
    this.server = createServer((inbound) => {
      if (this.refuseConnections) return void inbound.destroy();
      if (this.refuseUpgrades === 0) return this.forward(inbound);
      this.track(inbound, inbound);
      inbound.once("data", (first: Buffer) => {
        if (this.refuseUpgrades > 0 && /^upgrade: *websocket/im.test(first.toString("latin1"))) {
          this.refuseUpgrades--;
          this.refusedUpgrades++;
          inbound.destroy();
          return;
        }
        this.forward(inbound, first);
      });
    });
  }

  private forward(inbound: Socket, first?: Buffer): void {
    const outbound = connect(this.target, this.host);
    for (const s of [inbound, outbound]) this.track(s, s === inbound ? outbound : inbound);
    if (first !== undefined) outbound.write(first);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  }

  private track(s: Socket, peer: Socket): void {
    if (this.sockets.has(s)) return;
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    s.on("error", () => {
      s.destroy();
      peer.destroy();
    });
  }

  static async start(target: number, host = "127.0.0.1"): Promise<Relay> {
    const relay = new Relay(target, host);
    await new Promise<void>((resolve) => relay.server.listen(0, "127.0.0.1", resolve));
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops every connection at once, as a network failure would. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function portOf(url: string): number {
  return Number(new URL(url).port);
}
