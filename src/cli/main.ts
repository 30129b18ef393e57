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
    .version(pkg.version);
  registerServe(program);
  registerToken(program);
  registerPublish(program);
  registerNotify(program);
  registerTail(program);
  registerCommandCli(program);
  registerChangesCli(program);
  conciseUsageErrors(program, "tidings");
  return program;
}

/**
 * A usage error is one sentence and a pointer to the help, exit 2 (main), not the whole
 * help and exit 1 as commander does by default.
 */
function conciseUsageErrors(cmd: Command, path: string): void {
  cmd.exitOverride().configureOutput({
    outputError: (text, write) => {
      const sentence = text.trim().replace(/^error: /i, "").replace(/\n\(Did you mean (.*)\?\)$/, " (did you mean $1?)");
      write(`${path}: ${sentence}. See \`${path} --help\`.\n`);
    },
  });
  for (const sub of cmd.commands) conciseUsageErrors(sub, `${path} ${sub.name()}`);
}

/** What the operator must fix before starting: exit 2 (docs/errors.md). */
const EXIT_2 = new Set(["TIDINGS_ERR_CONFIG", "TIDINGS_ERR_STORE_UNAVAILABLE", "TIDINGS_ERR_STORE_SCHEMA", "TIDINGS_ERR_LISTEN_FAILED"]);

/** Commander's codes that are not errors: --help and --version. */
const NOT_ERRORS = new Set(["commander.helpDisplayed", "commander.version"]);

/** Exit codes: 0 done, 1 failed (server refused, network), 2 bad usage or configuration. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(NOT_ERRORS.has(e.code) ? 0 : 2);
    if (e instanceof CliError) {
      process.stderr.write(`tidings: ${e.message}\n`);
      process.exit(e.exitCode);
    }
    if (isTidingsError(e)) {
      process.stderr.write(`tidings: ${e.code}: ${e.message}\n`);
      process.exit(EXIT_2.has(e.code) || e.status === 400 ? 2 : 1);
    }
    process.stderr.write(`tidings: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}

await main();
