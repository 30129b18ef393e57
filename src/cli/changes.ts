import type { Command } from "commander";
import postgres from "postgres";
import { isTidingsError } from "../errors.js";
import { resolveOptions } from "../options.js";
import { isChangeType } from "../protocol/changes.js";
import { migrate } from "../stores/postgres/migrate.js";
import { listWatched, unwatchTable, watchTable, type WatchedTable } from "../stores/postgres/watch.js";
import { addConfigOption, loadOptionsInput } from "./config.js";
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

/** Adds --store (and --config, where it can come from); the store must be PostgreSQL. */
function addStoreOption(cmd: Command): Command {
  return addConfigOption(cmd.option("--store <url>", "the PostgreSQL store tidings serves from, postgres://…?schema=… [TIDINGS_STORE]"));
}

/**
 * Runs `work` on the store's PostgreSQL, its schema created or upgraded first. The
 * catalogue's errors about the table (missing, no key, watched twice…) are bad usage: exit 2.
 */
async function withStore<T>(flags: Record<string, unknown>, work: (sql: postgres.Sql, schema: string) => Promise<T>): Promise<T> {
  const { store } = resolveOptions(loadOptionsInput({ flags }));
  if (!/^postgres(ql)?:\/\//.test(store)) {
    throw new CliError(`Watching tables needs the PostgreSQL store: pass --store postgres://… (the store is ${JSON.stringify(store.split(":")[0])}).`, 2);
  }
  const url = new URL(store);
  const schema = url.searchParams.get("schema") ?? "tidings";
  url.searchParams.delete("schema");
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {}, connection: { application_name: "tidings-cli" } });
  try {
    await migrate(sql, schema);
    return await work(sql, schema);
  } catch (e) {
    if (isTidingsError(e) && (e.code.startsWith("TIDINGS_ERR_CHANGE_") || e.code === "TIDINGS_ERR_DB_UNKNOWN")) throw new CliError(`${e.code}: ${e.message}`, 2);
    throw e;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function describeWatch(w: WatchedTable): string {
  const columns = w.columns === null ? `object: ${w.keyColumns.join(",")}; updated_fields over every column` : `columns: ${w.columns.join(",")}`;
  return `${w.table}${w.exists ? "" : " (dropped)"}  db=${w.db}  model=${w.model}  groups: ${w.groups.join(" ")}  ${columns}\n`;
}

function registerWatch(changes: Command): void {
  const watch = changes
    .command("watch")
    .description("install triggers so that every insert, update and delete of a PostgreSQL table is broadcast, in the writing transaction")
    .requiredOption("--table <schema.table>", "the application's table")
    .requiredOption("--model <name>", "the model name of its records (default group: <model>-{<primary key>})")
    .requiredOption("--db <name>", "the tidings database to publish in")
    .option("--group <template...>", "group template over columns, e.g. 'invoice-{id}' (repeat for several)")
    .option("--columns <list>", "comma-separated columns sent in object and compared for updated_fields (default: the key sent, every column compared)");
  addStoreOption(watch).action(async (flags: Record<string, unknown>) => {
    const groups = flags.group as string[] | undefined;
    const columns = list(flags.columns);
    const w = await withStore(flags, (sql, schema) =>
      watchTable(sql, schema, {
        table: flags.table as string,
        db: flags.db as string,
        model: flags.model as string,
        ...(groups !== undefined ? { groups } : {}),
        ...(columns !== undefined ? { columns } : {}),
      }),
    );
    process.stdout.write(`watching ${describeWatch(w)}`);
  });

  const unwatch = changes.command("unwatch").description("remove the triggers of a watched table").requiredOption("--table <schema.table>", "the watched table");
  addStoreOption(unwatch).action(async (flags: Record<string, unknown>) => {
    await withStore(flags, (sql, schema) => unwatchTable(sql, schema, flags.table as string));
    process.stdout.write(`unwatched ${String(flags.table)}\n`);
  });

  const ls = changes.command("list").description("show the watched tables").option("--json", "one JSON object per line");
  addStoreOption(ls).action(async (flags: Record<string, unknown>) => {
    const watched = await withStore(flags, (sql, schema) => listWatched(sql, schema));
    process.stdout.write(watched.map((w) => (flags.json ? `${JSON.stringify(w)}\n` : describeWatch(w))).join(""));
  });
}

/** `tidings changes …`: model-change broadcasts (docs/changes.md). */
export function registerChangesCli(program: Command): void {
  const changes = program.command("changes").description("broadcast record changes: publish one, or watch PostgreSQL tables");
  registerPublish(changes);
  registerWatch(changes);
}
