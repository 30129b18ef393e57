import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A worker process speaking IPC; `next(type)` resolves with its next message of that type. */
export class Worker<In extends { type: string }> {
  private readonly child: ChildProcess;
  private readonly queue: In[] = [];
  private readonly waiters: Array<{ type: string; resolve: (m: In) => void; reject: (e: Error) => void }> = [];

  constructor(script: URL) {
    this.child = fork(fileURLToPath(script), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (m: In) => {
      if (m.type === "error") {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${script}: ${(m as unknown as { text: string }).text}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.queue.push(m);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(m: unknown): void {
    this.child.send(m as object);
  }

  next<T extends In["type"]>(type: T, timeoutMs = 120_000): Promise<Extract<In, { type: T }>> {
    const i = this.queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as Extract<In, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<In, { type: T }>);
        },
        reject,
      });
    });
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}
