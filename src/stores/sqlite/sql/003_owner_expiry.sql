-- tidings: breaking (an older version records claims without expires_at, which this one takes as lapsed)
-- Ownership claims of client:<id> channels lapse: expires_at (ms since the epoch) is renewed
-- each time the owner claims again, and lapsed rows are deleted. Rows from before this
-- migration have no known last use: they lapse at once (0) and the clients still using
-- them claim them again on their next poll.
ALTER TABLE owners ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;

-- An owner's claims by last use: the cap frees the least recently renewed.
CREATE INDEX owners_by_owner ON owners (db, owner, expires_at);
-- The sweep of lapsed claims.
CREATE INDEX owners_by_expiry ON owners (db, expires_at);
