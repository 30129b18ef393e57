-- tidings: compatible
-- Application tables watched for model changes (`tidings changes watch`, docs/changes.md).
-- Each row has a trigger function of its own, <schema>.changes_<id>(), generated from it,
-- and three statement-level triggers on the table (<schema>_changes_insert/update/delete)
-- that append the table's changes to the log inside the writing transaction.
CREATE TABLE :TIDINGS_SCHEMA.watched (
  id          serial PRIMARY KEY,
  table_oid   oid    NOT NULL UNIQUE,
  -- Schema-qualified and quoted as when watched; the live name is table_oid::regclass.
  table_name  text   NOT NULL,
  db          text   NOT NULL,
  model       text   NOT NULL,
  key_columns text[] NOT NULL,
  -- Columns sent in `object` and compared for updated_fields; NULL: the key in `object`,
  -- every column (also those added later) compared.
  columns     text[],
  groups      text[] NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
