import type { Command } from "commander";
import { addRemoteOptions, CliError, closeConnections, postJson, replyError, resolveRemote } from "./remote.js";
import { readStdin } from "./stdin.js";

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The messages of a publish: the argument (one JSON object), else stdin holding one JSON
 * object, a JSON array of objects, or JSON lines. `--type` fills in a missing `type`.
 */
export function parseMessages(text: string, type: string | undefined): JsonObject[] {
  const trimmed = text.trim();
  if (trimmed.length === 0) {
    if (type !== undefined) return [{ type }];
    throw new CliError("No message: give a JSON object as argument or on stdin (or just --type).", 2);
  }
  let values: unknown[];
  try {
    const v = JSON.parse(trimmed) as unknown;
    values = Array.isArray(v) ? v : [v];
  } catch {
    values = trimmed.split("\n").filter((l) => l.trim().length > 0).map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new CliError(`Line ${i + 1} is not JSON: ${line.slice(0, 80)}`, 2);
      }
    });
  }
  return values.map((v, i) => {
    if (!isObject(v)) throw new CliError(`Message ${i + 1} is not a JSON object.`, 2);
    return type !== undefined && v.type === undefined ? { ...v, type } : v;
  });
}

/** `tidings publish`: publishes through a running server's HTTP API and prints the message_id(s). */
export function registerPublish(program: Command): void {
  const cmd = program
    .command("publish")
    .description("publish messages to a channel of a running server; prints each message_id")
    .argument("[message]", "the message, a JSON object (default: read from stdin: an object, an array or JSON lines)")
    .requiredOption("--channel <channel>", "channel to publish on")
    .option("--type <type>", "message type, for messages without one");
  addRemoteOptions(cmd).action(async (message: string | undefined, flags: Record<string, unknown>) => {
    const remote = await resolveRemote(flags);
    const text = message ?? (process.stdin.isTTY ? "" : await readStdin());
    const messages = parseMessages(text, typeof flags.type === "string" ? flags.type : undefined);
    const channel = flags.channel as string;
    const url = `${remote.url}/${encodeURIComponent(remote.db)}/publish`;
    try {
      if (messages.length === 1) {
        const reply = await postJson(url, remote.token, { channel, message: messages[0] });
        if (reply.status !== 200) throw replyError(reply);
        process.stdout.write(`${(reply.body as { message_id: string }).message_id}\n`);
        return;
      }
      // Batches are atomic and ordered; chunks of the server's batch limit keep that per chunk.
      for (let i = 0; i < messages.length; i += remote.options.maxBatch) {
        const chunk = messages.slice(i, i + remote.options.maxBatch);
        const reply = await postJson(url, remote.token, { messages: chunk.map((m) => ({ channel, message: m })) });
        if (reply.status !== 200) throw replyError(reply);
        process.stdout.write((reply.body as { message_ids: string[] }).message_ids.map((id) => `${id}\n`).join(""));
      }
    } finally {
      closeConnections();
    }
  });
}
