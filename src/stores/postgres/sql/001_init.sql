-- tidings: compatible
-- The log, its retention watermark, ownership, and the SQL entry points for publishing.
-- :TIDINGS_SCHEMA and :TIDINGS_NOTIFY_CHANNEL are replaced by migrate.ts.

CREATE TABLE :TIDINGS_SCHEMA.meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- Log order is (xid, pos): the writing transaction's id, then a sequence for order within it.
-- Readers only return rows whose xid is below the oldest running transaction, so a
-- transaction that took its id earlier but commits later is never skipped.
CREATE TABLE :TIDINGS_SCHEMA.log (
  db      text   NOT NULL,
  xid     xid8   NOT NULL DEFAULT pg_current_xact_id(),
  pos     bigserial,
  channel text   NOT NULL,
  type    text   NOT NULL,
  ts      bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
  -- The message as JSON text without message_id, kept byte for byte.
  payload text   NOT NULL,
  PRIMARY KEY (db, xid, pos)
);
CREATE INDEX log_db_ts ON :TIDINGS_SCHEMA.log (db, ts);

-- Highest (xid, pos) removed by retention: cursors below it have missed messages.
CREATE TABLE :TIDINGS_SCHEMA.trimmed (
  db  text   PRIMARY KEY,
  xid xid8   NOT NULL,
  pos bigint NOT NULL
);

CREATE TABLE :TIDINGS_SCHEMA.owners (
  db    text NOT NULL,
  key   text NOT NULL,
  owner text NOT NULL,
  PRIMARY KEY (db, key)
);

-- Appends entries in array order within the caller's transaction, and wakes listeners
-- when it commits (NOTIFY is transactional). Used by the TypeScript store and by publish().
CREATE FUNCTION :TIDINGS_SCHEMA.append_entries(p_db text, p_channels text[], p_types text[], p_payloads text[])
RETURNS TABLE (xid text, pos text, ts text)
LANGUAGE sql VOLATILE AS $$
  WITH ins AS (
    INSERT INTO :TIDINGS_SCHEMA.log (db, channel, type, payload)
    SELECT p_db, u.channel, u.type, u.payload
    FROM unnest(p_channels, p_types, p_payloads) WITH ORDINALITY AS u(channel, type, payload, n)
    ORDER BY u.n
    RETURNING log.xid, log.pos, log.ts
  ), wake AS (
    SELECT pg_notify(:TIDINGS_NOTIFY_CHANNEL, p_db)
  )
  SELECT ins.xid::text, ins.pos::text, ins.ts::text FROM ins, wake ORDER BY ins.pos
$$;

-- Publishes one message from SQL, in the caller's transaction, and returns its message id.
-- Any message_id in `message` is replaced; `message->>'type'` is required.
CREATE FUNCTION :TIDINGS_SCHEMA.publish(db text, channel text, message jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
  r record;
BEGIN
  IF db IS NULL OR db !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
    RAISE EXCEPTION 'tidings publish: invalid database name %', quote_nullable(db) USING ERRCODE = '22023';
  END IF;
  IF channel IS NULL OR length(channel) NOT BETWEEN 1 AND 255 THEN
    RAISE EXCEPTION 'tidings publish: a channel has 1 to 255 characters' USING ERRCODE = '22023';
  END IF;
  IF jsonb_typeof(message) IS DISTINCT FROM 'object'
     OR jsonb_typeof(message -> 'type') IS DISTINCT FROM 'string'
     OR message ->> 'type' = '' THEN
    RAISE EXCEPTION 'tidings publish: the message must be a JSON object with a non-empty string "type"' USING ERRCODE = '22023';
  END IF;
  SELECT * INTO r FROM :TIDINGS_SCHEMA.append_entries(
    db, ARRAY[channel], ARRAY[message ->> 'type'], ARRAY[(message - 'message_id')::text]);
  -- Same format as log.ts: <epoch>:<xid as 16 hex digits><pos as 16 hex digits>.
  RETURN (SELECT value FROM :TIDINGS_SCHEMA.meta WHERE key = 'epoch')
    || ':' || lpad(to_hex(r.xid::bigint), 16, '0') || lpad(to_hex(r.pos::bigint), 16, '0');
END
$$;
