/** `tidings serve` (the real CLI) in a process of its own, for the benches. */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../bin/tidings.mjs", import.meta.url));

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
}

/** Starts `tidings serve --port 0 <args>`; resolves with its URL, read from the start-up line on stderr. */
export function startServe(args: readonly string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    // JSON logs: only what is worth a look.
    if (!/"level":(30|20|10)\b/.test(line)) process.stderr.write(`[server] ${line}\n`);
  });
  return new Promise((resolve, reject) => {
    // The one human line: `tidings listening on http://127.0.0.1:<port> · …`.
    createInterface({ input: child.stderr! }).on("line", (line) => {
      const m = /^tidings listening on (http:\/\/\S+)/.exec(line);
      if (m) return resolve({ url: m[1]!, child });
      process.stderr.write(`[server] ${line}\n`);
    });
    child.once("exit", (code) => reject(new Error(`tidings serve exited with ${code}`)));
  });
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
