-- tidings: compatible
-- Initial schema. Migrations are append-only: change the schema in a new numbered file.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- One table holds the logs of every database. AUTOINCREMENT: a seq is never handed out
-- twice, even after retention deleted the newest rows.
CREATE TABLE messages (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  db      TEXT    NOT NULL,
  channel TEXT    NOT NULL,
  type    TEXT    NOT NULL,
  ts      INTEGER NOT NULL,
  json    TEXT    NOT NULL
);
CREATE INDEX messages_db_seq ON messages (db, seq);
CREATE INDEX messages_db_channel_seq ON messages (db, channel, seq);
CREATE INDEX messages_db_ts ON messages (db, ts);

-- Per database: the highest seq removed by retention and the highest seq appended, so
-- that old and future cursors are recognised after a restart and after trimming all.
CREATE TABLE logs (
  db              TEXT    PRIMARY KEY,
  trimmed_through INTEGER NOT NULL DEFAULT 0,
  last_seq        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE owners (
  db    TEXT NOT NULL,
  key   TEXT NOT NULL,
  owner TEXT NOT NULL,
  PRIMARY KEY (db, key)
) WITHOUT ROWID;

-- The rowid orders commands created in the same millisecond (insertion order).
CREATE TABLE commands (
  db              TEXT    NOT NULL,
  id              TEXT    NOT NULL,
  address         TEXT    NOT NULL,
  method          TEXT    NOT NULL,
  args            TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  result          TEXT,
  error           TEXT,
  idempotency_key TEXT,
  deadline        INTEGER,
  attempts        INTEGER NOT NULL DEFAULT 0,
  claimed_by      TEXT,
  lease_until     INTEGER,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  started_at      INTEGER,
  finished_at     INTEGER
);
CREATE UNIQUE INDEX commands_db_id ON commands (db, id);
-- NULL keys are distinct in a unique index, so commands without a key never collide.
CREATE UNIQUE INDEX commands_idempotency ON commands (db, address, idempotency_key);
CREATE INDEX commands_db_created ON commands (db, created_at);
CREATE INDEX commands_db_address_created ON commands (db, address, created_at);
-- Open commands only: claims and counts stay fast however many final ones pile up.
CREATE INDEX commands_open ON commands (db, address, created_at)
  WHERE state IN ('pending', 'delivered', 'running');
CREATE INDEX commands_claimed ON commands (db, claimed_by)
  WHERE claimed_by IS NOT NULL;
CREATE INDEX commands_deadline ON commands (db, deadline)
  WHERE deadline IS NOT NULL AND state IN ('pending', 'delivered', 'running');
