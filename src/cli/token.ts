import type { Command } from "commander";
import { loadSecret } from "../auth/secret.js";
import { signToken } from "../auth/tokens.js";
import { ROLES, type Role } from "../core/identity.js";
import { resolveOptions } from "../options.js";
import { addSecretOptions, loadOptionsInput } from "./config.js";
import { CliError } from "./remote.js";
import { cliSeconds } from "./durations.js";

function list(text: string | undefined): string[] {
  return (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** `tidings token`: prints a signed JWT for this server's secret. */
export function registerToken(program: Command): void {
  const cmd = program
    .command("token")
    .description("print a signed token (JWT) for a user of a database")
    .requiredOption("--db <name>", 'database the token is for ("*" only with --role admin)')
    .requiredOption("--user <id>", "user id (the token's subject; user:<id> is always theirs)")
    .option("--channels <patterns>", "extra channels the user may read, comma separated; * is a wildcard, {user} the user id")
    .option("--addresses <patterns>", "command addresses the client may register as, comma separated")
    .option("--role <role>", `one of ${ROLES.join(", ")}`, "subscriber")
    .option("--ttl <duration>", "lifetime: 90 (seconds), 90s, 30m, 12h, 7d; an admin token for the admin page may want 12h", "1h");
  addSecretOptions(cmd).action(async (flags: Record<string, string | undefined>) => {
    const role = flags.role as Role;
    if (!ROLES.includes(role)) throw new CliError(`--role must be one of ${ROLES.join(", ")}.`, 2);
    if (flags.db === "*" && role !== "admin") throw new CliError('--db "*" is only valid with --role admin.', 2);
    // Whole seconds: a JWT's exp is in seconds.
    const ttlSeconds = Math.round(cliSeconds(flags.ttl ?? "1h", "--ttl"));
    if (ttlSeconds <= 0) throw new CliError("--ttl must be at least one second.", 2);
    const options = resolveOptions(loadOptionsInput({ flags }));
    const secret = loadSecret(options.secret, options.dataDir, false);
    if (secret === null) {
      throw new CliError(
        `No secret: pass --secret, set TIDINGS_SECRET, or start \`tidings serve\` once with this data directory (${options.dataDir}) so that it creates one.`,
        2,
      );
    }
    const token = await signToken(secret, {
      db: flags.db!,
      user: flags.user!,
      role,
      channels: list(flags.channels),
      addresses: list(flags.addresses),
      ttlSeconds,
    });
    process.stdout.write(`${token}\n`);
  });
}
