import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isTidingsError } from "../errors.js";
import { CliError } from "./remote.js";
import { registerServe } from "./serve.js";
import { registerToken } from "./token.js";
import { registerPublish } from "./publish.js";
import { registerNotify } from "./notify.js";
import { registerTail } from "./tail.js";
import { registerCommandCli } from "./command.js";
import { registerChangesCli } from "./changes.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/** The `tidings` program with every command. */
export function buildProgram(): Command {
  const program = new Command("tidings")
    .description("a real-time message bus for business applications")
    .version(pkg.version)
    .showHelpAfterError();
  registerServe(program);
  registerToken(program);
  registerPublish(program);
  registerNotify(program);
  registerTail(program);
  registerCommandCli(program);
  registerChangesCli(program);
  return program;
}

/** Exit codes: 0 done, 1 failed (server refused, network), 2 bad usage or configuration. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    if (e instanceof CliError) {
      process.stderr.write(`tidings: ${e.message}\n`);
      process.exit(e.exitCode);
    }
    if (isTidingsError(e)) {
      process.stderr.write(`tidings: ${e.code}: ${e.message}\n`);
      process.exit(e.code === "TIDINGS_ERR_CONFIG" || e.status === 400 ? 2 : 1);
    }
    process.stderr.write(`tidings: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}

await main();
