import type postgres from "postgres";
import { TidingsError } from "../../errors.js";
import { isValidDbName } from "../../core/channels.js";
import { templateFields, validateModelName, validateTemplate } from "../../core/changes.js";
import { CHANGE_MESSAGE_TYPE } from "../../protocol/changes.js";
import { notifyChannel } from "./migrate.js";

/**
 * Model changes captured by PostgreSQL itself (DESIGN §7): statement-level triggers on an
 * application's table append one `subscription-update` message per changed row and group
 * to the log, inside the writing transaction (a TRUNCATE: a delete per row, read just
 * before). A rollback leaves nothing; the rows take the transaction's id, so readers see
 * them in the commit-safe log order (DESIGN §3) like any other append. One NOTIFY per
 * statement wakes the instances; it carries the database name only, never data, so rows of
 * any size go through.
 */

export interface WatchSpec {
  /** `schema.table` (or a name found on the search_path). */
  readonly table: string;
  readonly db: string;
  readonly model: string;
  /** Group templates over the table's columns. @default ["<model>-{<primary key>}"] */
  readonly groups?: readonly string[];
  /**
   * Columns sent in `object` (the primary key always is) and compared for `updated_fields`.
   * @default the primary key in `object`; every column, also those added later, compared
   */
  readonly columns?: readonly string[];
}

export interface WatchedTable {
  readonly table: string;
  readonly db: string;
  readonly model: string;
  readonly keyColumns: readonly string[];
  readonly columns: readonly string[] | null;
  readonly groups: readonly string[];
  /** False when the table was dropped since (its triggers went with it). */
  readonly exists: boolean;
  readonly createdAt: string;
}

const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** `a."x", a."y"`: columns of the row alias `a`. */
function fields(alias: string, columns: readonly string[]): string {
  return columns.map((c) => `${alias}.${ident(c)}`).join(", ");
}

/**
 * The row's JSON text with only `columns`, in that order, compact (`{"id":42,"state":"paid"}`),
 * without its closing brace: what row_to_json() of a sub-select gives, built by concatenation
 * (to_json per column), which costs a third of the sub-select per row on bulk statements.
 */
function objectJsonOpen(alias: string, columns: readonly string[]): string {
  return columns
    .map((c, i) => `${literal(`${i === 0 ? "{" : ","}${JSON.stringify(c)}:`)} || coalesce(to_json(${alias}.${ident(c)})::text, 'null')`)
    .join(" || ");
}

/** A group template as an SQL text expression: NULL when a column it names is NULL. */
function groupExpression(alias: string, template: string): string {
  const parts: string[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (m.index > last) parts.push(literal(template.slice(last, m.index)));
    parts.push(`${alias}.${ident(m[1]!)}::text`);
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push(literal(template.slice(last)));
  return parts.length === 1 && parts[0]!.startsWith("'") ? `${parts[0]}::text` : parts.join(" || ");
}

/** A column of the table, and whether its type has an equality of its own (json, point… have none). */
export interface TableColumn {
  readonly name: string;
  readonly comparable: boolean;
}

interface Compiled {
  readonly keyColumns: readonly string[];
  readonly columns: readonly string[] | null;
  readonly groups: readonly string[];
  /** Every column of the table when watched, in table order. */
  readonly tableColumns: readonly TableColumn[];
  /** A partitioned table: its rows are in its partitions, read through it. */
  readonly partitioned: boolean;
}

/** Where the TRUNCATE branch names the table: filled in at run time, so that a renamed table still works. */
const THIS_TABLE = "\u0000tidings_this_table\u0000";

/**
 * The body of the trigger function: one set-based INSERT into the log per statement, rows
 * in the order the statement wrote them. Updates compare the columns typed, as compiled
 * when watched; a table whose columns changed since is compared through JSON (slower,
 * also covers the new columns) until it is watched again.
 *
 * Bulk statements pay per row (docs/benchmarks.md, "Model changes"): so a single group is
 * computed inline rather than unnested, and the object is concatenated, not sub-selected.
 */
function triggerBody(schema: string, db: string, w: Compiled): string {
  const s = ident(schema);
  const objectColumns = w.columns === null ? w.keyColumns : [...w.keyColumns.filter((k) => !w.columns!.includes(k)), ...w.columns];
  const open = (a: string) => objectJsonOpen(a, objectColumns);
  const obj = (a: string) => `${open(a)} || '}'`;
  const single = w.groups.length === 1;
  // One group: its name as `group`; several: an array, unnested per row below.
  const groups = (a: string) =>
    single ? groupExpression(a, w.groups[0]!) : `ARRAY[${w.groups.map((g) => groupExpression(a, g)).join(", ")}]::text[]`;
  const key = (a: string) => `(${fields(a, w.keyColumns)})`;
  const rows = (table: string, json = false) =>
    `(SELECT row_number() OVER () AS tidings_ord, t.*${json ? ", row_to_json(t) AS tidings_json" : ""} FROM ${table} t)`;
  // OFFSET 0 keeps \`c\` a sub-query: flattened, its expressions would be computed once per use.
  const [from, channel, order] = single
    ? ["", "c.groups", "c.phase, c.ord"]
    : ["\n    CROSS JOIN LATERAL unnest(c.groups) WITH ORDINALITY AS g(channel, gi)", "g.channel", "c.phase, c.ord, g.gi"];
  const insert = (source: string) => `
    INSERT INTO ${s}.log (db, channel, type, payload)
    SELECT ${literal(db)}, ${channel}, ${literal(CHANGE_MESSAGE_TYPE)},
      '{"type":"${CHANGE_MESSAGE_TYPE}","data":{"type":"' || c.kind || '","group":' || to_json(${channel})::text || ',"object":' || c.obj || '}}'
    FROM (${source}
      OFFSET 0) c${from}
    -- A group naming a NULL column is left out; so is a value no channel can hold.
    WHERE ${channel} IS NOT NULL AND length(${channel}) BETWEEN 1 AND 255 AND ${channel} !~ '[[:cntrl:]]'
    ORDER BY ${order}`;
  const created = insert(`SELECT 0 AS phase, n.tidings_ord AS ord, 'create' AS kind, ${obj("n")} AS obj, ${groups("n")} AS groups FROM ${rows("tidings_new")} n`);
  const deleted = insert(`SELECT 0 AS phase, o.tidings_ord AS ord, 'delete' AS kind, ${obj("o")} AS obj, ${groups("o")} AS groups FROM ${rows("tidings_old")} o`);
  // TRUNCATE has no transition table: before it runs, every row still there is a delete.
  // Dynamic SQL over TG_RELID, as the trigger knows the table only by oid.
  const [truncateHead, truncateTail] = insert(
    `SELECT 0 AS phase, o.tidings_ord AS ord, 'delete' AS kind, ${obj("o")} AS obj, ${groups("o")} AS groups FROM ${rows(`${w.partitioned ? "" : "ONLY "}${THIS_TABLE}`)} o`,
  ).split(THIS_TABLE) as [string, string];
  const truncated = `
    EXECUTE $tidings_sql$${truncateHead}$tidings_sql$ || TG_RELID::regclass::text || $tidings_sql$${truncateTail}$tidings_sql$`;
  // One join of the old and new rows by key. An update that changed the key is the old
  // record gone (a delete, before the rest) and a new one there (a create).
  const updated = (changed: string, json: boolean) =>
    insert(`
      SELECT CASE WHEN n.tidings_ord IS NULL THEN 0 ELSE 1 END AS phase,
        coalesce(n.tidings_ord, o.tidings_ord) AS ord,
        CASE WHEN o.tidings_ord IS NULL THEN 'create' WHEN n.tidings_ord IS NULL THEN 'delete' ELSE 'update' END AS kind,
        CASE WHEN n.tidings_ord IS NULL THEN ${obj("o")} WHEN o.tidings_ord IS NULL THEN ${obj("n")}
          ELSE ${open("n")} || ',"updated_fields":' || to_json(f.fields)::text || '}' END AS obj,
        CASE WHEN n.tidings_ord IS NULL THEN ${groups("o")} ELSE ${groups("n")} END AS groups
      FROM ${rows("tidings_new", json)} n FULL JOIN ${rows("tidings_old", json)} o ON ${key("o")} = ${key("n")}
      CROSS JOIN LATERAL (SELECT CASE WHEN n.tidings_ord IS NULL OR o.tidings_ord IS NULL THEN NULL ELSE ${changed} END AS fields) f
      WHERE f.fields IS NULL OR cardinality(f.fields) > 0`);
  const byType = new Map(w.tableColumns.map((c) => [c.name, c.comparable]));
  const compared = w.columns ?? w.tableColumns.map((c) => c.name);
  const typed = `array_remove(ARRAY[${compared
    .map((c) => {
      const [n, o] = byType.get(c) === false ? [`n.${ident(c)}::text`, `o.${ident(c)}::text`] : [`n.${ident(c)}`, `o.${ident(c)}`];
      return `CASE WHEN ${n} IS DISTINCT FROM ${o} THEN ${literal(c)} END`;
    })
    .join(", ")}]::text[], NULL)`;
  const generic = `ARRAY(SELECT z.k FROM ROWS FROM (json_each_text(n.tidings_json), json_each_text(o.tidings_json)) AS z(k, v, k2, v2)
        WHERE z.v IS DISTINCT FROM z.v2)`;
  const allColumns = `ARRAY[${w.tableColumns.map((c) => literal(c.name)).join(", ")}]::text[]`;
  // Watching every column: a column added (or dropped) since is seen by the JSON comparison.
  const updateBranch =
    w.columns !== null
      ? `${updated(typed, false)};`
      : `
    IF (SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped) = ${allColumns} THEN${updated(typed, false)};
    ELSE${updated(generic, true)};
    END IF;`;
  return `
DECLARE
  appended bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN${created};
  ELSIF TG_OP = 'UPDATE' THEN${updateBranch}
  ELSIF TG_OP = 'DELETE' THEN${deleted};
  ELSE${truncated};
  END IF;
  GET DIAGNOSTICS appended = ROW_COUNT;
  -- A wake-up for every instance at commit: the database name, never data.
  IF appended > 0 THEN
    PERFORM pg_notify(${literal(notifyChannel(schema))}, ${literal(db)});
  END IF;
  RETURN NULL;
END`;
}

const EVENTS = ["insert", "update", "delete", "truncate"] as const;
const TRANSITIONS = {
  insert: "NEW TABLE AS tidings_new",
  update: "OLD TABLE AS tidings_old NEW TABLE AS tidings_new",
  delete: "OLD TABLE AS tidings_old",
} as const;

function triggerName(schema: string, event: (typeof EVENTS)[number]): string {
  return `${schema}_changes_${event}`;
}

function functionName(id: number): string {
  return `changes_${id}`;
}

interface TableRow {
  oid: string;
  relkind: string;
  name: string;
}

/** The table named `table`, or a precise error. */
async function findTable(tx: postgres.TransactionSql, table: string): Promise<TableRow> {
  let rows: TableRow[];
  try {
    rows = await tx<TableRow[]>`
      SELECT c.oid::text AS oid, c.relkind::text AS relkind, format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass(${table})`;
  } catch (cause) {
    // to_regclass refuses a malformed name ("a.b.c.d", unbalanced quotes).
    throw new TidingsError("TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", `${JSON.stringify(table)} is not a table name: use schema.table.`, { cause });
  }
  const row = rows[0];
  if (row === undefined) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", `There is no table ${JSON.stringify(table)} (name it schema.table).`);
  }
  if (row.relkind !== "r" && row.relkind !== "p") {
    throw new TidingsError("TIDINGS_ERR_CHANGE_TABLE_UNKNOWN", `${row.name} is not a table (views and other relations cannot be watched).`);
  }
  return row;
}

/**
 * Installs the triggers of one table, in one transaction: everything or nothing. The
 * caller's role must be allowed to create triggers on the table (its owner, or TRIGGER);
 * the trigger function runs as that role (SECURITY DEFINER), so the application's own
 * roles need no rights on the tidings schema.
 */
export async function watchTable(sql: postgres.Sql, schema: string, spec: WatchSpec): Promise<WatchedTable> {
  if (!isValidDbName(spec.db)) {
    throw new TidingsError("TIDINGS_ERR_DB_UNKNOWN", `Invalid database name ${JSON.stringify(spec.db.slice(0, 64))}: use [A-Za-z0-9_.-], 1 to 63 characters.`);
  }
  validateModelName(spec.model);
  for (const g of spec.groups ?? []) validateTemplate(g);
  if (spec.groups !== undefined && spec.groups.length === 0) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_GROUP_INVALID", "Give at least one group template, or none for <model>-{<primary key>}.");
  }
  if (spec.columns !== undefined && spec.columns.length === 0) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN", "Give at least one column, or none for the primary key only.");
  }
  const s = sql(schema);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`tidings.watch:${schema}`}, 0))`;
    const table = await findTable(tx, spec.table);
    const [already] = await tx`SELECT 1 FROM ${s}.watched WHERE table_oid = ${table.oid}::oid`;
    if (already !== undefined) {
      throw new TidingsError("TIDINGS_ERR_CHANGE_ALREADY_WATCHED", `${table.name} is already watched: unwatch it first to change how.`);
    }
    const keyColumns = (
      await tx<{ name: string }[]>`
        SELECT a.attname AS name FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
        WHERE i.indrelid = ${table.oid}::oid AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`
    ).map((r) => r.name);
    if (keyColumns.length === 0) {
      throw new TidingsError("TIDINGS_ERR_CHANGE_TABLE_NO_KEY", `${table.name} has no primary key: a change could not say which record it is about.`);
    }
    // Typed comparison where the type (or a domain's base type) has a default btree operator class.
    const tableColumns = await tx<TableColumn[]>`
      SELECT a.attname AS name, EXISTS (
        SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
        WHERE am.amname = 'btree' AND oc.opcdefault
          AND oc.opcintype = coalesce(nullif(ty.typbasetype, 0), a.atttypid)
      ) AS comparable
      FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
      WHERE a.attrelid = ${table.oid}::oid AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`;
    const existing = new Set(tableColumns.map((c) => c.name));
    const unknown = (names: readonly string[], where: string): void => {
      const missing = names.filter((n) => !existing.has(n));
      if (missing.length > 0) {
        throw new TidingsError("TIDINGS_ERR_CHANGE_COLUMN_UNKNOWN", `${table.name} has no column ${missing.map((m) => JSON.stringify(m)).join(", ")} (${where}).`);
      }
    };
    const columns = spec.columns === undefined ? null : [...new Set(spec.columns)];
    if (columns !== null) unknown(columns, "--columns");
    const groups = spec.groups ?? [`${spec.model}-${keyColumns.map((k) => `{${k}}`).join(",")}`];
    for (const g of groups) {
      validateTemplate(g);
      unknown(templateFields(g), `group ${g}`);
    }
    const [row] = await tx<{ id: number }[]>`
      INSERT INTO ${s}.watched (table_oid, table_name, db, model, key_columns, columns, groups)
      VALUES (${table.oid}::oid, ${table.name}, ${spec.db}, ${spec.model}, ${keyColumns}::text[], ${columns}::text[], ${groups}::text[])
      RETURNING id`;
    const fn = `${ident(schema)}.${ident(functionName(row!.id))}`;
    await tx.unsafe(`
      CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
      -- JIT would compile the statement at every bulk write (estimates over transition tables are high): seconds, not milliseconds.
      -- Old and new rows are joined by hashing: a merge join sorts both sides first (7 % more CPU on a bulk UPDATE).
      SET search_path = pg_catalog, pg_temp SET jit = off SET enable_mergejoin = off AS $tidings$${triggerBody(schema, spec.db, { keyColumns, columns, groups, tableColumns: [...tableColumns], partitioned: table.relkind === "p" })}
      $tidings$`);
    for (const event of EVENTS) {
      const timing = event === "truncate" ? `BEFORE TRUNCATE ON ${table.name}` : `AFTER ${event.toUpperCase()} ON ${table.name} REFERENCING ${TRANSITIONS[event]}`;
      await tx.unsafe(`CREATE TRIGGER ${ident(triggerName(schema, event))} ${timing} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`);
    }
    return { table: table.name, db: spec.db, model: spec.model, keyColumns, columns, groups, exists: true, createdAt: new Date().toISOString() };
  });
}

/** Removes the triggers and function of a watched table (also of one dropped since); in one transaction. */
export async function unwatchTable(sql: postgres.Sql, schema: string, table: string): Promise<void> {
  const s = sql(schema);
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`tidings.watch:${schema}`}, 0))`;
    let named: { oid: string | null; name: string | null } = { oid: null, name: null };
    try {
      // In a savepoint: a malformed name fails the statement, and must not fail the transaction.
      const found = await tx.savepoint((sp) => sp<{ oid: string | null; name: string | null }[]>`
        SELECT c.oid::text AS oid, CASE WHEN c.oid IS NOT NULL THEN format('%I.%I', n.nspname, c.relname) END AS name
        FROM (SELECT to_regclass(${table}) AS oid) r
        LEFT JOIN pg_class c ON c.oid = r.oid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace`);
      named = found[0] ?? named;
    } catch {
      // A malformed name: only a dropped table's recorded name can match it.
    }
    // The live table, or a recorded one that was dropped since (its triggers went with it).
    const [row] = await tx<{ id: number; exists: boolean; name: string }[]>`
      SELECT w.id, c.oid IS NOT NULL AS exists,
        CASE WHEN c.oid IS NULL THEN w.table_name ELSE format('%I.%I', n.nspname, c.relname) END AS name
      FROM ${s}.watched w LEFT JOIN pg_class c ON c.oid = w.table_oid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE w.table_oid = ${named.oid}::oid OR (c.oid IS NULL AND w.table_name IN (${table}, ${named.name ?? table}))
      ORDER BY c.oid IS NULL LIMIT 1`;
    if (row === undefined) throw new TidingsError("TIDINGS_ERR_CHANGE_NOT_WATCHED", `${JSON.stringify(table)} is not watched.`);
    if (row.exists) {
      for (const event of EVENTS) await tx.unsafe(`DROP TRIGGER IF EXISTS ${ident(triggerName(schema, event))} ON ${row.name}`);
    }
    await tx.unsafe(`DROP FUNCTION IF EXISTS ${ident(schema)}.${ident(functionName(row.id))}()`);
    await tx`DELETE FROM ${s}.watched WHERE id = ${row.id}`;
  });
}

export async function listWatched(sql: postgres.Sql, schema: string): Promise<WatchedTable[]> {
  const s = sql(schema);
  const rows = await sql<
    { name: string; exists: boolean; db: string; model: string; key_columns: string[]; columns: string[] | null; groups: string[]; created_at: string }[]
  >`
    SELECT CASE WHEN c.oid IS NULL THEN w.table_name ELSE format('%I.%I', n.nspname, c.relname) END AS name,
      c.oid IS NOT NULL AS exists, w.db, w.model, w.key_columns, w.columns, w.groups, w.created_at::text AS created_at
    FROM ${s}.watched w LEFT JOIN pg_class c ON c.oid = w.table_oid LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
    ORDER BY w.id`;
  return rows.map((r) => ({
    table: r.name,
    db: r.db,
    model: r.model,
    keyColumns: r.key_columns,
    columns: r.columns,
    groups: r.groups,
    exists: r.exists,
    createdAt: r.created_at,
  }));
}
