import type postgres from "postgres";
import { TidingsError } from "../../errors.js";
import { newEpoch } from "../message-id.js";
import { planMigrations, readMigrations, type AppliedMigration } from "../migrations.js";

const SQL_DIR = new URL("./sql/", import.meta.url);

/** Lower-case identifiers only: they go into SQL text and into the NOTIFY channel name (63 bytes at most). */
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;

/** The one NOTIFY channel of a schema; its payload is a database name, never data. */
export function notifyChannel(schema: string): string {
  return `${schema}_append`;
}

/** A schema name is checked before it goes into SQL text: a bad one is a configuration error. */
export function checkSchemaName(schema: string): void {
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new TidingsError(
      "TIDINGS_ERR_CONFIG",
      `Invalid PostgreSQL schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]*, at most 48 characters.`,
    );
  }
}

/** Migration files name the schema and the channel by placeholder, so one set of files serves every schema. */
function render(text: string, schema: string): string {
  return text
    .replaceAll(":TIDINGS_SCHEMA", `"${schema}"`)
    .replaceAll(":TIDINGS_NOTIFY_CHANNEL", `'${notifyChannel(schema)}'`);
}

export interface Migrated {
  readonly epoch: string;
  /** Migrations a newer tidings applied, all declared compatible (a rolling upgrade). */
  readonly newer: readonly AppliedMigration[];
}

/**
 * Creates or upgrades `schema` and returns its epoch. The whole run is one transaction
 * behind an advisory lock taken first, so instances starting together apply each
 * migration once and wait for each other instead of racing on CREATE.
 */
export async function migrate(sql: postgres.Sql, schema: string): Promise<Migrated> {
  checkSchemaName(schema);
  const known = readMigrations(SQL_DIR);
  const s = sql(schema);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`tidings.migrate:${schema}`}, 0))`;
    await tx`CREATE SCHEMA IF NOT EXISTS ${s}`;
    await tx`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    // Whether older versions may run against it; NULL for rows written before the column.
    await tx`ALTER TABLE ${s}.schema_migrations ADD COLUMN IF NOT EXISTS compatible boolean`;
    const applied = await tx<AppliedMigration[]>`SELECT version, name, compatible FROM ${s}.schema_migrations`;
    const plan = planMigrations(known, applied, `The PostgreSQL schema "${schema}"`);
    for (const m of plan.toApply) {
      // Simple protocol: a migration file holds several statements.
      await tx.unsafe(render(m.text, schema));
      await tx`INSERT INTO ${s}.schema_migrations (version, name, compatible) VALUES (${m.version}, ${m.name}, ${m.compatible})`;
    }
    // Created with the schema and kept for its lifetime: a recreated schema gets a new epoch.
    await tx`INSERT INTO ${s}.meta (key, value) VALUES ('epoch', ${newEpoch()}) ON CONFLICT (key) DO NOTHING`;
    const [row] = await tx<{ value: string }[]>`SELECT value FROM ${s}.meta WHERE key = 'epoch'`;
    return { epoch: row!.value, newer: plan.newer };
  });
}
