import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const CLI = fileURLToPath(new URL("../../bin/tidings.mjs", import.meta.url));

/** The environment without any TIDINGS_* of the developer's shell, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TIDINGS_")) env[k] = v;
  return { ...env, ...extra };
}

export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "tidings-cli-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  /** Killed, and the promise rejected, past this. @default 60_000 */
  timeoutMs?: number;
}

/** Runs `tidings <args>` to completion, or kills it and rejects past the deadline. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<CliResult> {
  return runNode([CLI, ...args], opts);
}

/** Runs `node <args>` (in `cwd`) to completion, or kills it and rejects past the deadline. */
export function runNode(args: readonly string[], opts: RunOptions & { cwd?: string } = {}): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: cleanEnv(opts.env), stdio: ["pipe", "pipe", "pipe"], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${args.join(" ")} did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs `tidings <args>`, which must exit 0; resolves with its stdout, trimmed. */
export async function runCliOk(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const res = await runCli(args, opts);
  if (res.code !== 0) throw new Error(`tidings ${args.join(" ")} exited with ${res.code}: ${res.stderr}`);
  return res.stdout.trim();
}

/** A running `tidings serve`, its JSON log lines, and how to stop it. */
export interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly logs: Array<Record<string, unknown>>;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The metrics token every served test process gets: /metrics needs credentials by default. */
export const METRICS_TOKEN = "metrics-token-of-the-cli-tests";

/** Starts `tidings serve <args>` on a free port and resolves once it logs "tidings listening" (within `timeoutMs`). */
export function serve(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000, nofile?: number): Promise<Served> {
  const argv = [CLI, "serve", "--port", "0", ...args];
  const opts = { env: cleanEnv({ TIDINGS_METRICS_TOKEN: METRICS_TOKEN, ...env }), stdio: ["ignore", "pipe", "pipe"] as ["ignore", "pipe", "pipe"] };
  // `nofile`: the server runs under that open-files limit (soft and hard).
  const child =
    nofile === undefined
      ? spawn(process.execPath, argv, opts)
      : spawn("/bin/sh", ["-c", `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], opts);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tidings serve did not listen within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === "tidings listening") {
        clearTimeout(timer);
        resolve({
          child,
          url: `http://127.0.0.1:${entry.port as number}`,
          logs,
          stop(signal: NodeJS.Signals = "SIGTERM") {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tidings serve exited with ${code} before listening: ${stderr}`));
    });
  });
}

/** Resolves when the server's parked-poll gauge reaches `n` (polls are parked, not in flight); rejects past `timeoutMs`. */
export async function parkedPolls(url: string, n: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, signal: AbortSignal.timeout(timeoutMs) })).text();
    const m = /^tidings_parked_polls (\d+)/m.exec(text);
    if (m && Number(m[1]) >= n) return;
    if (Date.now() > deadline) throw new Error(`${n} parked poll(s) expected within ${timeoutMs} ms; the gauge says ${m?.[1] ?? "nothing"}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** POSTs JSON with a bearer token; returns status and parsed body. */
export async function post(url: string, token: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** `promise`, or a rejection naming `what` past `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
