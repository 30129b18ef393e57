-- tidings: compatible
-- The store's own appends (a transaction of their own) insert without NOTIFY and wake
-- listeners right after commit, coalesced per database. A NOTIFY in the appending
-- transaction takes PostgreSQL's cluster-wide notification lock from before the commit
-- record is written until it is flushed, so every publishing commit waited for the one
-- before it (about a thousand per second here); without it, commits share WAL flushes.
-- append_entries (with NOTIFY) stays for publishes inside the application's transactions
-- and for publish() from SQL, whose commit only PostgreSQL sees.
CREATE FUNCTION :TIDINGS_SCHEMA.append_rows(p_db text, p_channels text[], p_types text[], p_payloads text[])
RETURNS TABLE (xid text, pos text, ts text)
LANGUAGE sql VOLATILE AS $$
  INSERT INTO :TIDINGS_SCHEMA.log (db, channel, type, payload)
  SELECT p_db, u.channel, u.type, u.payload
  FROM unnest(p_channels, p_types, p_payloads) WITH ORDINALITY AS u(channel, type, payload, n)
  ORDER BY u.n
  RETURNING log.xid::text, log.pos::text, log.ts::text
$$;
