/** `tidings serve` (the real CLI) in a process of its own, for the benches. */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../bin/tidings.mjs", import.meta.url));

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
}

export interface ServeOptions {
  /** Options of node itself (`--cpu-prof`, `--max-semi-space-size=…`), before the CLI. */
  readonly nodeArgs?: readonly string[];
  /** Sees every JSON log line, info and debug included. */
  readonly onLog?: (line: string) => void;
}

/** Starts `tidings serve --port 0 <args>`; resolves with its URL, read from the start-up line on stderr. */
export function startServe(args: readonly string[], options: ServeOptions = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    options.onLog?.(line);
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

/** A TCP port free on loopback right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

/**
 * `<root>/bin/tidings.mjs serve <args>` of any checkout (an older one may print no start-up
 * line), from its TypeScript sources, on a free port; resolves once `/healthz` answers.
 * `nofile` runs it under that open-files limit (soft and hard).
 */
export async function startServeFrom(root: string, args: readonly string[], options: { nofile?: number; deadlineMs?: number } = {}): Promise<ServeProcess> {
  const port = await freePort();
  const argv = [join(root, "bin", "tidings.mjs"), "serve", "--host", "127.0.0.1", "--port", String(port), ...args];
  const env = { ...process.env, TIDINGS_FROM_SOURCE: "1" };
  const child = options.nofile === undefined
    ? spawn(process.execPath, argv, { stdio: ["ignore", "ignore", "pipe"], env })
    : spawn("/bin/sh", ["-c", `ulimit -n ${options.nofile} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ["ignore", "ignore", "pipe"], env });
  createInterface({ input: child.stderr! }).on("line", (line) => process.stderr.write(`[server] ${line}\n`));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.deadlineMs ?? 60_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tidings serve (${root}) exited with ${child.exitCode}`);
    const up = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (up) return { url, child };
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`tidings serve (${root}) did not answer /healthz within the deadline`);
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
