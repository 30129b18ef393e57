/**
 * The one migration runner of the SQL engines (SQLite, PostgreSQL). Migrations are
 * numbered, append-only files `sql/NNN_name.sql`; each says in its first lines whether an
 * older tidings, which does not know it, may keep running against the migrated schema:
 *
 *   -- tidings: compatible    (adds what older versions ignore: a rolling upgrade is safe)
 *   -- tidings: breaking      (older versions must be stopped first)
 *
 * Anything after the word says why.
 * The engine runs the plan under its own lock and transaction; the runner decides what to
 * apply and whether the migrations it finds applied but does not know allow it to start.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TidingsError } from "../errors.js";

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly text: string;
  /** False for a `-- tidings: breaking` migration. */
  readonly compatible: boolean;
}

/** A row of `schema_migrations`; `compatible` is null for rows written before the column existed. */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly compatible: boolean | null;
}

const FILE = /^(\d+)_[\w.-]+\.sql$/;
const DECLARATION = /^--\s*tidings:\s*(compatible|breaking)\b/;

/** The declaration, looked for in the comment lines that open the file. */
function declaration(text: string): string | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith("--") && line.trim() !== "") return undefined;
    const m = DECLARATION.exec(line.trim());
    if (m) return m[1];
  }
  return undefined;
}

/** The migrations of `dir`, in order. Two files with one number, or one without a declaration, are a packaging bug. */
export function readMigrations(dir: URL): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => FILE.test(f))
    .map((name) => ({ name, version: Number.parseInt(name, 10) }))
    .sort((a, b) => a.version - b.version);
  return files.map((f, i) => {
    if (i > 0 && files[i - 1]!.version === f.version) {
      throw new TidingsError("TIDINGS_ERR_INTERNAL", `Two migrations are numbered ${f.version} in ${fileURLToPath(dir)}.`);
    }
    const text = readFileSync(new URL(f.name, dir), "utf8");
    const declared = declaration(text);
    if (declared === undefined) {
      throw new TidingsError(
        "TIDINGS_ERR_INTERNAL",
        `The migration ${f.name} does not say whether older versions may run against it ("-- tidings: compatible" or "-- tidings: breaking").`,
      );
    }
    return { ...f, text, compatible: declared === "compatible" };
  });
}

export interface MigrationPlan {
  /** Known and not yet applied, in order. */
  readonly toApply: readonly Migration[];
  /** Applied by a newer tidings, all declared compatible: this version may run next to them. */
  readonly newer: readonly AppliedMigration[];
}

/**
 * What to apply to a store whose `schema_migrations` holds `applied`. A migration applied
 * by a newer tidings is tolerated when it was declared compatible (a rolling upgrade: an
 * older instance restarts next to the newer schema); a breaking one stops this version
 * with TIDINGS_ERR_STORE_SCHEMA. `where` names the schema or file in that sentence.
 */
export function planMigrations(known: readonly Migration[], applied: readonly AppliedMigration[], where: string): MigrationPlan {
  const done = new Set(applied.map((a) => a.version));
  const newest = known.at(-1)?.version ?? 0;
  const newer = applied.filter((a) => a.version > newest).sort((a, b) => a.version - b.version);
  const breaking = newer.find((a) => a.compatible !== true);
  if (breaking !== undefined) {
    throw new TidingsError(
      "TIDINGS_ERR_STORE_SCHEMA",
      `${where} was migrated by a newer tidings (migration ${breaking.version}, ${breaking.name}) in a way this version (which knows up to ${newest}) cannot use: upgrade this instance.`,
    );
  }
  return { toApply: known.filter((m) => !done.has(m.version)), newer };
}
