import type { Command } from "commander";
import { addRemoteOptions, CliError, closeConnections, postJson, replyError, resolveRemote } from "./remote.js";

/** `tidings notify`: Tryton's notify() from the command line; prints the message_id. */
export function registerNotify(program: Command): void {
  const cmd = program
    .command("notify")
    .description("send a notification popup to a user (or one client of theirs); prints its message_id")
    .requiredOption("--title <text>", "one-line summary")
    .option("--body <text>", "short text, may span lines, no markup")
    .option("--priority <n>", "0 (low) to 3 (urgent)", "1")
    .option("--user <id>", "user to notify (channel user:<id>)")
    .option("--client <id>", "only this client of the user (channel client:<id>)");
  addRemoteOptions(cmd).action(async (flags: Record<string, unknown>) => {
    if (flags.user === undefined && flags.client === undefined) throw new CliError("Give --user or --client.", 2);
    const priority = Number(flags.priority);
    if (!Number.isInteger(priority)) throw new CliError("--priority must be an integer from 0 to 3.", 2);
    const remote = await resolveRemote(flags);
    try {
      const reply = await postJson(`${remote.url}/${encodeURIComponent(remote.db)}/notify`, remote.token, {
        title: flags.title,
        ...(flags.body !== undefined ? { body: flags.body } : {}),
        priority,
        ...(flags.user !== undefined ? { user: flags.user } : {}),
        ...(flags.client !== undefined ? { client: flags.client } : {}),
      });
      if (reply.status !== 200) throw replyError(reply);
      process.stdout.write(`${(reply.body as { message_id: string }).message_id}\n`);
    } finally {
      closeConnections();
    }
  });
}
