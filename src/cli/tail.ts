import type { Command } from "commander";
import { addRemoteOptions, CliError, closeConnections, postJson, replyError, resolveRemote, type JsonReply } from "./remote.js";

interface PollAnswer {
  readonly channel: string | null;
  readonly message: { message_id?: unknown } | null;
  readonly messages?: ReadonlyArray<{ channel: string; message: { message_id?: unknown } }>;
  readonly gap?: boolean;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

function retryable(reply: JsonReply): boolean {
  return reply.status === 429 || reply.status === 502 || reply.status === 503 || reply.status === 504;
}

/**
 * `tidings tail`: long-polls `POST /<db>/bus` with max_messages and prints each message as
 * one JSON line `{"channel": …, "message": …}`, resuming by cursor across reconnects and
 * server restarts. Without --last-message the first poll has no cursor, so it starts with
 * the messages of the server's no-cursor window (the last 5 s, as Tryton does).
 */
export function registerTail(program: Command): void {
  const cmd = program
    .command("tail")
    .description("print a database's messages live, one JSON line each")
    .requiredOption("--channels <channels>", "channels to follow, comma separated")
    .option("--last-message <id>", "resume after this message_id")
    .option("--max-messages <n>", "most messages per poll answer", "100")
    .option("-n, --count <n>", "exit after this many messages");
  addRemoteOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const channels = String(flags.channels)
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (channels.length === 0) throw new CliError("--channels needs at least one channel.", 2);
    const maxMessages = Number(flags.maxMessages);
    if (!Number.isInteger(maxMessages) || maxMessages < 1) throw new CliError("--max-messages must be a positive integer.", 2);
    const count = flags.count === undefined ? Infinity : Number(flags.count);
    if (!(count > 0)) throw new CliError("--count must be a positive integer.", 2);

    const remote = await resolveRemote(flags);
    const url = `${remote.url}/${encodeURIComponent(remote.db)}/bus`;
    let cursor: string | null = typeof flags.lastMessage === "string" ? flags.lastMessage : null;
    let printed = 0;
    let failures = 0;
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    process.stdout.on("error", (e: NodeJS.ErrnoException) => {
      // A closed pipe (`| head`) ends the tail, quietly.
      if (e.code === "EPIPE") stop.abort();
    });
    try {
      while (!stop.signal.aborted && printed < count) {
        let reply: JsonReply;
        try {
          reply = await postJson(url, remote.token, { last_message: cursor, channels, max_messages: maxMessages }, stop.signal);
        } catch (e) {
          if (stop.signal.aborted) break;
          await backoff(++failures, `${(e as Error).message}`, stop.signal);
          continue;
        }
        if (reply.status !== 200) {
          if (!retryable(reply)) throw replyError(reply);
          await backoff(++failures, replyError(reply).message, stop.signal);
          continue;
        }
        failures = 0;
        const answer = reply.body as PollAnswer;
        if (answer.gap === true) {
          process.stderr.write(`tidings tail: gap — messages before ${cursor ?? "the start"} may have been missed (cursor unknown or older than retention)\n`);
        }
        const batch = answer.messages ?? (answer.channel !== null && answer.message !== null ? [{ channel: answer.channel, message: answer.message }] : []);
        let out = "";
        for (const m of batch) {
          if (printed >= count) break;
          out += `${JSON.stringify({ channel: m.channel, message: m.message })}\n`;
          printed++;
          if (typeof m.message.message_id === "string") cursor = m.message.message_id;
        }
        if (out.length > 0 && !process.stdout.write(out)) {
          await new Promise((resolve) => process.stdout.once("drain", resolve));
        }
      }
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      closeConnections();
    }
  });
}

/** Full-jitter exponential backoff; returns early when stopped. */
async function backoff(attempt: number, reason: string, signal: AbortSignal): Promise<void> {
  const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 10));
  const delay = Math.round(Math.random() * cap);
  process.stderr.write(`tidings tail: ${reason}; retrying in ${delay} ms\n`);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, delay);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
