-- tidings: compatible
-- Server-to-client commands. Times are milliseconds since the Unix epoch, as in the store contract.

CREATE TABLE :TIDINGS_SCHEMA.commands (
  db              text    NOT NULL,
  id              text    NOT NULL,
  -- Insertion order: breaks created_at ties when claiming (oldest first) and listing (newest first).
  seq             bigserial,
  address         text    NOT NULL,
  method          text    NOT NULL,
  args            text    NOT NULL,
  state           text    NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'delivered', 'running', 'succeeded', 'failed', 'expired', 'cancelled')),
  result          text,
  error           text,
  idempotency_key text,
  deadline        bigint,
  attempts        integer NOT NULL DEFAULT 0,
  claimed_by      text,
  lease_until     bigint,
  created_at      bigint  NOT NULL,
  delivered_at    bigint,
  started_at      bigint,
  finished_at     bigint,
  PRIMARY KEY (db, id)
);
CREATE UNIQUE INDEX commands_idempotency ON :TIDINGS_SCHEMA.commands (db, address, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_address ON :TIDINGS_SCHEMA.commands (db, address, created_at, seq);
CREATE INDEX commands_created ON :TIDINGS_SCHEMA.commands (db, created_at, seq);
CREATE INDEX commands_claimed_by ON :TIDINGS_SCHEMA.commands (db, claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX commands_deadline ON :TIDINGS_SCHEMA.commands (db, deadline)
  WHERE deadline IS NOT NULL AND state IN ('pending', 'delivered', 'running');
