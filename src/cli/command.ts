import type { Command } from "commander";
import { createCommandSender, RemoteError, type CommandSender, type CommandView } from "../client/index.js";
import { cliSeconds } from "./durations.js";
import { addRemoteOptions, CliError, resolveRemote } from "./remote.js";

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

/** The SDK's command sender for these flags; refusals and unreachable servers become CLI errors. */
async function senderFor(flags: Record<string, unknown>): Promise<{ sender: CommandSender; origin: string }> {
  const remote = await resolveRemote(flags);
  return { sender: createCommandSender({ url: remote.url, db: remote.db, token: remote.token }), origin: new URL(remote.url).origin };
}

function cliError(e: unknown, origin: string): unknown {
  if (e instanceof RemoteError) return new CliError(`${e.code}: ${e.message}`);
  if (e instanceof TypeError) {
    const cause = (e as { cause?: { message?: unknown } }).cause;
    return new CliError(`Cannot reach ${origin}: ${typeof cause?.message === "string" ? cause.message : e.message}`);
  }
  return e;
}

/** Runs one CLI action on the sender, mapping its errors to sentences. */
async function withSender(flags: Record<string, unknown>, action: (sender: CommandSender) => Promise<void>): Promise<void> {
  const { sender, origin } = await senderFor(flags);
  try {
    await action(sender);
  } catch (e) {
    throw cliError(e, origin);
  } finally {
    sender.close();
  }
}

/** Waits on the server (across its restarts) when --wait was given, then prints and sets the exit code. */
async function show(sender: CommandSender, c: CommandView, wait: number | null, json: boolean): Promise<void> {
  const shown =
    wait === null
      ? c
      : await sender.waitFor(c.id, {
          timeoutMs: wait * 1000,
          onRetry: (reason, delayMs) => process.stderr.write(`tidings command: ${reason}; retrying in ${delayMs} ms\n`),
        });
  print(shown, json);
  if (wait !== null) process.exitCode = exitCodeOf(shown);
}

/** `tidings command send|get|list|cancel`: server-to-client commands through the client SDK's command sender. */
export function registerCommandCli(program: Command): void {
  const command = program.command("command").description("send server-to-client commands and follow them to their outcome");

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
    let args: unknown[] = positional.map(parseArg);
    if (typeof flags.args === "string") {
      if (positional.length > 0) throw new CliError("Give the arguments either positionally or with --args, not both.", 2);
      const parsed = parseArg(flags.args);
      if (!Array.isArray(parsed)) throw new CliError("--args must be a JSON array.", 2);
      args = parsed;
    }
    if (typeof flags.timeout === "string" && typeof flags.deadline === "string") {
      throw new CliError("Give --timeout or --deadline, not both.", 2);
    }
    const wait = waitSeconds(flags.wait, "--wait");
    const timeoutSeconds = typeof flags.timeout === "string" ? cliSeconds(flags.timeout, "--timeout") : undefined;
    await withSender(flags, async (sender) => {
      const c = await sender.send(address, method, args, {
        ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        ...(typeof flags.deadline === "string" ? { deadline: flags.deadline } : {}),
        ...(typeof flags.idempotencyKey === "string" ? { idempotencyKey: flags.idempotencyKey } : {}),
      });
      await show(sender, c, wait, flags.json === true);
    });
  });

  const get = command
    .command("get")
    .description("show a command; with --wait, once it has an outcome")
    .argument("<id>", "the command id")
    .option("--wait [duration]", WAIT_HELP)
    .option("--json", "print the command as JSON");
  addRemoteOptions(get).action(async (id: string, flags: Record<string, unknown>) => {
    const wait = waitSeconds(flags.wait, "--wait");
    await withSender(flags, async (sender) => show(sender, await sender.get(id), wait, flags.json === true));
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
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError("--limit must be an integer from 1 to 1000.", 2);
    const text = (key: string): string | undefined => (typeof flags[key] === "string" ? (flags[key] as string) : undefined);
    const [address, state, since, until] = [text("address"), text("state"), text("since"), text("until")];
    await withSender(flags, async (sender) => {
      const commands = await sender.list({
        limit,
        ...(address !== undefined ? { address } : {}),
        ...(state !== undefined ? { state: state.split(",").map((s) => s.trim()) as CommandView["state"][] } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
      });
      for (const c of commands) {
        process.stdout.write(
          flags.json === true ? `${JSON.stringify(c)}\n` : `${c.id}  ${c.state.padEnd(9)}  ${c.created_at}  ${c.address} ${c.method}\n`,
        );
      }
    });
  });

  const cancel = command
    .command("cancel")
    .description("cancel a command that has no outcome yet")
    .argument("<id>", "the command id")
    .option("--json", "print the command as JSON");
  addRemoteOptions(cancel).action(async (id: string, flags: Record<string, unknown>) => {
    await withSender(flags, async (sender) => print(await sender.cancel(id), flags.json === true));
  });
}
