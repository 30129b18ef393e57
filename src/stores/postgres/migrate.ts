import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type postgres from "postgres";
import { newEpoch } from "../message-id.js";

const SQL_DIR = new URL("./sql/", import.meta.url);

/** Lower-case identifiers only: they go into SQL text and into the NOTIFY channel name (63 bytes at most). */
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;

/** The one NOTIFY channel of a schema; its payload is a database name, never data. */
export function notifyChannel(schema: string): string {
  return `${schema}_append`;
}

interface Migration {
  readonly version: number;
  readonly name: string;
}

function migrations(): Migration[] {
  const files = readdirSync(SQL_DIR)
    .filter((f) => /^\d+_[\w.-]+\.sql$/.test(f))
    .map((name) => ({ name, version: Number.parseInt(name, 10) }))
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < files.length; i++) {
    if (files[i - 1]!.version === files[i]!.version) {
      throw new Error(`two migrations numbered ${files[i]!.version} in ${fileURLToPath(SQL_DIR)}`);
    }
  }
  return files;
}

/** Migration files name the schema and the channel by placeholder, so one set of files serves every schema. */
function render(text: string, schema: string): string {
  return text
    .replaceAll(":TIDINGS_SCHEMA", `"${schema}"`)
    .replaceAll(":TIDINGS_NOTIFY_CHANNEL", `'${notifyChannel(schema)}'`);
}

/**
 * Creates or upgrades `schema` and returns its epoch. Everything happens in one transaction
 * behind an advisory lock, so instances starting together apply each migration once and
 * wait for each other instead of racing on CREATE.
 */
export async function migrate(sql: postgres.Sql, schema: string): Promise<string> {
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new Error(`Invalid PostgreSQL schema name ${JSON.stringify(schema)}: use [a-z_][a-z0-9_]*, at most 48 characters`);
  }
  const files = migrations();
  const s = sql(schema);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`tidings.migrate:${schema}`}, 0))`;
    await tx`CREATE SCHEMA IF NOT EXISTS ${s}`;
    await tx`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    const applied = new Set((await tx<{ version: number }[]>`SELECT version FROM ${s}.schema_migrations`).map((r) => r.version));
    const newest = files.at(-1)?.version ?? 0;
    const ahead = [...applied].filter((v) => v > newest);
    if (ahead.length > 0) {
      throw new Error(`Schema "${schema}" has migration ${Math.max(...ahead)}, newer than this tidings (${newest}): upgrade tidings`);
    }
    for (const f of files) {
      if (applied.has(f.version)) continue;
      // Simple protocol: a migration file holds several statements.
      await tx.unsafe(render(readFileSync(new URL(f.name, SQL_DIR), "utf8"), schema));
      await tx`INSERT INTO ${s}.schema_migrations (version, name) VALUES (${f.version}, ${f.name})`;
    }
    // Created with the schema and kept for its lifetime: a recreated schema gets a new epoch.
    await tx`INSERT INTO ${s}.meta (key, value) VALUES ('epoch', ${newEpoch()}) ON CONFLICT (key) DO NOTHING`;
    const [row] = await tx<{ value: string }[]>`SELECT value FROM ${s}.meta WHERE key = 'epoch'`;
    return row!.value;
  });
}
