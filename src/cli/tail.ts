import type { Command } from "commander";
import WebSocket from "ws";
import { createClient, RemoteError, type TransportName, type WebSocketConstructor } from "../client/index.js";
import { addRemoteOptions, CliError, resolveRemote } from "./remote.js";

const TRANSPORTS = new Set<TransportName>(["websocket", "sse", "longpoll"]);
/** Refusals that no retry can cure with this command's fixed token. */
const FATAL = /^TIDINGS_ERR_(AUTH_|CHANNEL_|REQUEST_|DB_|ROLE_)/;

/**
 * `tidings tail`: prints each message of the channels as one JSON line
 * `{"channel": …, "message": …}`, resuming by cursor across reconnects and server restarts.
 * Built on the client SDK (its reconnect, backoff and resume), over long-polling by default:
 * the wire that passes every proxy. Without --last-message the first read has no cursor, so
 * it starts with the messages of the server's no-cursor window (the last 5 s, as Tryton does).
 */
export function registerTail(program: Command): void {
  const cmd = program
    .command("tail")
    .description("print a database's messages live, one JSON line each")
    .requiredOption("--channels <channels>", "channels to follow, comma separated")
    .option("--last-message <id>", "resume after this message_id")
    .option("--max-messages <n>", "most messages per poll answer", "100")
    .option("-n, --count <n>", "exit after this many messages")
    .option("--transport <list>", "transports to try in order, comma separated: websocket, sse, longpoll", "longpoll");
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
    const transports = String(flags.transport)
      .split(",")
      .map((s) => s.trim()) as TransportName[];
    if (transports.length === 0 || transports.some((t) => !TRANSPORTS.has(t))) {
      throw new CliError("--transport takes websocket, sse and/or longpoll, comma separated.", 2);
    }

    const remote = await resolveRemote(flags);
    const client = createClient({
      url: remote.url,
      db: remote.db,
      token: remote.token,
      transports,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      longPollBatch: maxMessages,
    });
    await new Promise<void>((resolve, reject) => {
      let printed = 0;
      let done = false;
      const finish = (error?: Error): void => {
        if (done) return;
        done = true;
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        void client.close().then(() => (error === undefined ? resolve() : reject(error)));
      };
      const onSignal = (): void => finish();
      const refused = (e: unknown): Error =>
        e instanceof RemoteError ? new CliError(`${e.code}: ${e.message}`) : e instanceof Error ? e : new Error(String(e));
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      process.stdout.on("error", (e: NodeJS.ErrnoException) => {
        // A closed pipe (`| head`) ends the tail, quietly.
        if (e.code === "EPIPE") finish();
      });
      client.on("reconnecting", (e) => process.stderr.write(`tidings tail: ${e.reason}; retrying in ${e.delayMs} ms\n`));
      client.on("error", (e) => {
        if (e instanceof RemoteError && FATAL.test(e.code)) finish(refused(e));
      });
      const sub = client.subscribe(
        channels,
        (message, channel) => {
          if (printed >= count || done) return;
          process.stdout.write(`${JSON.stringify({ channel, message })}\n`);
          if (++printed >= count) finish();
        },
        {
          ...(typeof flags.lastMessage === "string" ? { from: flags.lastMessage } : {}),
          onGap: () =>
            process.stderr.write(
              `tidings tail: gap — messages before ${sub.cursor ?? "the start"} may have been missed (cursor unknown or older than retention)\n`,
            ),
        },
      );
      sub.ready.catch((e: unknown) => finish(refused(e)));
    });
  });
}
