/**
 * Child processes of the fault suite, each run to completion within a deadline: a process
 * that hangs fails the test with what it printed, and its exit code is always returned for
 * the test to check.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CLI, cleanEnv } from "../cli/cli-process.js";
import { NodeProcess } from "../commands/processes.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runWithin(args: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")} still ran after ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `node --import tsx test/faults/fixtures/<script>` left running, for a test to watch and kill. */
export function startFixture(script: string, env: Record<string, string>): NodeProcess {
  const child = spawn(process.execPath, ["--import", "tsx", `${FIXTURES}${script}`], { env: cleanEnv(env), stdio: ["pipe", "pipe", "pipe"] });
  return new NodeProcess(child);
}

/** `tidings <args>`. */
export function runTidings(args: readonly string[], timeoutMs = 20_000): Promise<Finished> {
  return runWithin([CLI, ...args], {}, timeoutMs);
}

/** The JSON lines a process printed. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
