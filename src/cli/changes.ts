import type { Command } from "commander";
import { isChangeType } from "../protocol/changes.js";
import { addRemoteOptions, CliError, closeConnections, postJson, replyError, resolveRemote } from "./remote.js";
import { readStdin } from "./stdin.js";

function list(value: unknown): string[] | undefined {
  if (typeof value !== "string") return undefined;
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The object of a change: one JSON object, as argument or on stdin. */
export function parseChangeObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`The object is not JSON: ${text.trim().slice(0, 80)}`, 2);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CliError('The object must be a JSON object, such as \'{"id":42,"state":"paid"}\'.', 2);
  }
  return value as Record<string, unknown>;
}

/** `tidings changes publish`: one model change through a running server's HTTP API; prints its message id(s). */
function registerPublish(changes: Command): void {
  const cmd = changes
    .command("publish")
    .description("publish that a record was created, updated or deleted; prints one message_id per group")
    .argument("[object]", "the record as subscribers get it, a JSON object with an id (default: read from stdin)")
    .requiredOption("--model <name>", "the record's model, e.g. invoice (default group: <model>-<id>)")
    .requiredOption("--type <type>", "create, update or delete")
    .option("--updated-fields <list>", "comma-separated fields that changed (updates only)")
    .option("--groups <list>", "comma-separated groups instead of <model>-<id>");
  addRemoteOptions(cmd).action(async (object: string | undefined, flags: Record<string, unknown>) => {
    if (!isChangeType(flags.type)) throw new CliError(`--type must be create, update or delete, not ${JSON.stringify(flags.type)}.`, 2);
    const text = object ?? (process.stdin.isTTY ? "" : await readStdin());
    if (text.trim().length === 0) throw new CliError("No object: give the record as a JSON object argument or on stdin.", 2);
    const fields = list(flags.updatedFields);
    if (fields !== undefined && flags.type !== "update") throw new CliError("--updated-fields is only for --type update.", 2);
    const groups = list(flags.groups);
    const remote = await resolveRemote(flags);
    try {
      const reply = await postJson(`${remote.url}/${encodeURIComponent(remote.db)}/changes`, remote.token, {
        model: flags.model,
        type: flags.type,
        object: parseChangeObject(text),
        ...(fields !== undefined ? { updated_fields: fields } : {}),
        ...(groups !== undefined ? { groups } : {}),
      });
      // The server's verdict on the change itself (bad model, group, id…) is bad usage too.
      if (reply.status === 400) throw new CliError(replyError(reply).message, 2);
      if (reply.status !== 200) throw replyError(reply);
      process.stdout.write((reply.body as { message_ids: string[] }).message_ids.map((id) => `${id}\n`).join(""));
    } finally {
      closeConnections();
    }
  });
}

/** `tidings changes …`: model-change broadcasts (docs/changes.md). */
export function registerChangesCli(program: Command): void {
  const changes = program.command("changes").description("broadcast record changes: publish one, or watch PostgreSQL tables");
  registerPublish(changes);
}
