import type { Command } from "commander";
import { createLogger } from "../logger.js";
import { resolveOptions, type TidingsOptions } from "../options.js";
import { redactStoreUrl } from "../stores/open-store.js";
import { createServer } from "../server.js";
import { addServerOptions, loadOptionsInput } from "./config.js";

/**
 * `tidings serve`: the server with the merged configuration. SIGTERM or SIGINT drains it
 * (parked polls answered empty, sockets closed, store closed) and exits 0; a second signal
 * exits at once with 1.
 */
export function registerServe(program: Command): void {
  const cmd = program.command("serve").description("run the server (default: SQLite in ./data, 127.0.0.1:8080)");
  addServerOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const input = loadOptionsInput({ flags });
    // Resolved here first so that a contradiction is reported before anything is opened.
    const options = resolveOptions(input);
    const logger = createLogger(options.logLevel);
    // A promise nobody awaited rejected (a bug, here or in a driver: porsager/postgres#1192).
    // No caller was waiting on it, whereas exiting would drop every connection and, on the
    // memory store, every message: it is logged as the bug it is, and the server keeps serving.
    const server = await createServer({ ...input, logger });
    process.on("unhandledRejection", (err) => {
      server.bus.metrics.unhandledRejections.inc();
      logger.error({ err }, "unhandled promise rejection: a bug, please report it; still serving");
    });
    await server.listen();
    // One line for the person who started it; the JSON logs (stdout) say the same for machines.
    process.stderr.write(`${startupLine(server.url, options)}\n`);

    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, "second signal: exiting without draining");
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, "draining");
      server.close().then(
        () => {
          logger.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}

/** `tidings listening on http://127.0.0.1:8080 · store sqlite:./data/tidings.db · databases tidings · admin page http://127.0.0.1:8080/admin` */
export function startupLine(url: string, options: TidingsOptions): string {
  const names = Object.keys(options.databases).map((d) => (d === "*" ? "* (any name)" : d));
  return [
    `tidings listening on ${url}`,
    `store ${redactStoreUrl(options.store)}`,
    `databases ${names.join(", ")}`,
    `admin page ${url}/admin`,
  ].join(" · ");
}
