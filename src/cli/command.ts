import type { Command } from "commander";
import type { CommandView } from "../protocol/commands.js";
import { cliSeconds } from "./durations.js";
import { addRemoteOptions, CliError, closeConnections, replyError, requestJson, resolveRemote, type Remote } from "./remote.js";

function commandsUrl(remote: Remote, path = ""): string {
  return `${remote.url}/${encodeURIComponent(remote.db)}/commands${path}`;
}

/** A positional argument: JSON when it parses (`3`, `true`, `{"a":1}`), else the text itself. */
export function parseArg(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function waitSeconds(value: unknown, where: string): number | null {
  if (value === undefined || value === false) return null;
  if (value === true) return 30;
  return cliSeconds(String(value), where);
}

/** `<id>  <state>  <address>.<method>(args)`, then the result or error when final. */
export function formatCommand(c: CommandView): string {
  const lines = [`${c.id}  ${c.state}  ${c.address} ${c.method}(${c.args.map((a) => JSON.stringify(a)).join(", ")})  attempts=${c.attempts}`];
  if (c.state === "succeeded") lines.push(`result: ${JSON.stringify(c.result)}`);
  if (c.state === "failed" && c.error !== null) {
    lines.push(`error: ${c.error.message}${c.error.code !== undefined ? ` (${c.error.code})` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Exit code after a wait ended by the command's outcome or by the wait's own end. */
export const WAIT_EXIT = { succeeded: 0, failed: 1, pending: 3 } as const;

const WAIT_HELP = "wait for the outcome: 90, 90s, 5m (default 30s); exits 0 if it succeeded, 1 if it failed, expired or was cancelled, 3 if it has no outcome yet when the wait ends";

/** Exit code of a command shown after a wait: 0 succeeded, 1 failed, expired or cancelled, 3 no outcome yet. */
function exitCodeOf(c: CommandView): number {
  if (c.state === "succeeded") return WAIT_EXIT.succeeded;
  return c.state === "failed" || c.state === "expired" || c.state === "cancelled" ? WAIT_EXIT.failed : WAIT_EXIT.pending;
}

function print(c: CommandView, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(c)}\n` : formatCommand(c));
}

/** `tidings command send|get|list|cancel`: server-to-client commands through the HTTP API. */
export function registerCommandCli(program: Command): void {
  const command = program.command("command").description("send server-to-client commands and follow them to their outcome");
  // Kept-alive sockets would hold the process after the answer.
  command.hook("postAction", () => closeConnections());

  const send = command
    .command("send")
    .description("send a command to a client address; prints it (and its outcome with --wait)")
    .argument("<address>", "the client address, e.g. software_dev.buildbot:5")
    .argument("<method>", "the method the client exposes")
    .argument("[args...]", "arguments, each JSON (3, true, {\"a\":1}) or else a string")
    .option("--args <json>", "all arguments as one JSON array (instead of positional ones)")
    .option("--timeout <duration>", "deadline from now: 90, 30s, 5m, 1h")
    .option("--deadline <date>", "absolute deadline, ISO 8601")
    .option("--idempotency-key <key>", "sending again with the same key returns the first command")
    .option("--wait [duration]", WAIT_HELP)
    .option("--json", "print the command as JSON");
  addRemoteOptions(send).action(async (address: string, method: string, positional: string[], flags: Record<string, unknown>) => {
    const remote = await resolveRemote(flags);
    let args: unknown[] = positional.map(parseArg);
    if (typeof flags.args === "string") {
      if (positional.length > 0) throw new CliError("Give the arguments either positionally or with --args, not both.", 2);
      const parsed = parseArg(flags.args);
      if (!Array.isArray(parsed)) throw new CliError("--args must be a JSON array.", 2);
      args = parsed;
    }
    const wait = waitSeconds(flags.wait, "--wait");
    const body = {
      address,
      method,
      args,
      ...(typeof flags.timeout === "string" ? { timeout: cliSeconds(flags.timeout, "--timeout") } : {}),
      ...(typeof flags.deadline === "string" ? { deadline: flags.deadline } : {}),
      ...(typeof flags.idempotencyKey === "string" ? { idempotency_key: flags.idempotencyKey } : {}),
    };
    const reply = await requestJson("POST", commandsUrl(remote, wait !== null ? `?wait=${wait}` : ""), remote.token, body);
    if (reply.status !== 201 && reply.status !== 200) throw replyError(reply);
    const c = reply.body as CommandView;
    print(c, flags.json === true);
    if (wait !== null) process.exitCode = exitCodeOf(c);
  });

  const get = command
    .command("get")
    .description("show a command; with --wait, once it has an outcome")
    .argument("<id>", "the command id")
    .option("--wait [duration]", WAIT_HELP)
    .option("--json", "print the command as JSON");
  addRemoteOptions(get).action(async (id: string, flags: Record<string, unknown>) => {
    const remote = await resolveRemote(flags);
    const wait = waitSeconds(flags.wait, "--wait");
    const reply = await requestJson("GET", commandsUrl(remote, `/${encodeURIComponent(id)}${wait !== null ? `?wait=${wait}` : ""}`), remote.token);
    if (reply.status !== 200) throw replyError(reply);
    const c = reply.body as CommandView;
    print(c, flags.json === true);
    if (wait !== null) process.exitCode = exitCodeOf(c);
  });

  const list = command
    .command("list")
    .description("list commands, newest first")
    .option("--address <address>", "only this address")
    .option("--state <states>", "only these states, comma separated (pending, delivered, running, succeeded, failed, expired, cancelled)")
    .option("--since <date>", "created at or after (ISO 8601)")
    .option("--until <date>", "created before (ISO 8601)")
    .option("--limit <n>", "at most this many (1-1000)", "100")
    .option("--json", "print JSON lines");
  addRemoteOptions(list).action(async (flags: Record<string, unknown>) => {
    const remote = await resolveRemote(flags);
    const q = new URLSearchParams();
    for (const key of ["address", "state", "since", "until", "limit"] as const) {
      if (typeof flags[key] === "string") q.set(key, flags[key] as string);
    }
    const reply = await requestJson("GET", commandsUrl(remote, `?${q}`), remote.token);
    if (reply.status !== 200) throw replyError(reply);
    for (const c of (reply.body as { commands: CommandView[] }).commands) {
      process.stdout.write(
        flags.json === true ? `${JSON.stringify(c)}\n` : `${c.id}  ${c.state.padEnd(9)}  ${c.created_at}  ${c.address} ${c.method}\n`,
      );
    }
  });

  const cancel = command
    .command("cancel")
    .description("cancel a command that has no outcome yet")
    .argument("<id>", "the command id")
    .option("--json", "print the command as JSON");
  addRemoteOptions(cancel).action(async (id: string, flags: Record<string, unknown>) => {
    const remote = await resolveRemote(flags);
    const reply = await requestJson("POST", commandsUrl(remote, `/${encodeURIComponent(id)}/cancel`), remote.token, {});
    if (reply.status !== 200) throw replyError(reply);
    print(reply.body as CommandView, flags.json === true);
  });
}
