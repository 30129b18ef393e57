-- tidings: breaking (an older version records claims without expires_at, which this one takes as lapsed)
-- Ownership claims of client:<id> channels lapse: expires_at (ms since the epoch) is renewed
-- each time the owner claims again, and lapsed rows are deleted. Rows from before this
-- migration have no known last use: they lapse at once (0) and the clients still using
-- them claim them again on their next poll.
ALTER TABLE :TIDINGS_SCHEMA.owners ADD COLUMN expires_at bigint NOT NULL DEFAULT 0;

-- An owner's claims by last use: the cap frees the least recently renewed.
CREATE INDEX owners_by_owner ON :TIDINGS_SCHEMA.owners (db, owner, expires_at);
-- The sweep of lapsed claims.
CREATE INDEX owners_by_expiry ON :TIDINGS_SCHEMA.owners (db, expires_at);

-- Store.claimOwner in one round trip: renews the caller's live claim, keeps another owner's,
-- takes an absent or lapsed one, and then drops the caller's lapsed claims and its least
-- recently renewed ones past p_max. Concurrent callers agree through the primary key.
CREATE FUNCTION :TIDINGS_SCHEMA.claim_owner(p_db text, p_key text, p_owner text, p_now bigint, p_ttl bigint, p_max integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_owner text;
BEGIN
  LOOP
    UPDATE :TIDINGS_SCHEMA.owners SET expires_at = p_now + p_ttl
      WHERE db = p_db AND key = p_key AND owner = p_owner AND expires_at > p_now;
    IF FOUND THEN
      RETURN p_owner;
    END IF;
    INSERT INTO :TIDINGS_SCHEMA.owners AS o (db, key, owner, expires_at) VALUES (p_db, p_key, p_owner, p_now + p_ttl)
      ON CONFLICT (db, key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE o.expires_at <= p_now
      RETURNING o.owner INTO v_owner;
    IF v_owner IS NOT NULL THEN
      EXIT;
    END IF;
    -- A live claim holds the key (another owner's, or the caller's renewed meanwhile).
    SELECT owner INTO v_owner FROM :TIDINGS_SCHEMA.owners WHERE db = p_db AND key = p_key AND expires_at > p_now;
    IF v_owner IS NOT NULL THEN
      RETURN v_owner;
    END IF;
    -- Deleted or lapsed in between: try again.
  END LOOP;
  DELETE FROM :TIDINGS_SCHEMA.owners WHERE db = p_db AND owner = p_owner AND expires_at <= p_now;
  DELETE FROM :TIDINGS_SCHEMA.owners WHERE db = p_db AND owner = p_owner AND key IN (
    SELECT key FROM :TIDINGS_SCHEMA.owners WHERE db = p_db AND owner = p_owner AND key <> p_key
    ORDER BY expires_at DESC, key DESC OFFSET p_max - 1);
  RETURN p_owner;
END;
$$;
