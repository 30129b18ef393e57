/**
 * What every peer server process does besides serving: tells the runner its port, and
 * answers memory (after a full GC) and CPU questions over IPC.
 */
export function serveRunner(port: number): void {
  const send = (m: unknown): void => void process.send!(m);
  process.on("message", (msg: { cmd: string }) => {
    if (msg.cmd === "mem") {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      send({ type: "mem", rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
    } else if (msg.cmd === "cpu") {
      const c = process.cpuUsage();
      send({ type: "cpu", micros: c.user + c.system });
    } else if (msg.cmd === "exit") {
      process.exit(0);
    }
  });
  send({ type: "listening", port });
}
