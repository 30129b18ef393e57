-- tidings: compatible
-- The processes that have this file open, so that a process starting can tell whether the
-- command claims it finds may belong to a live process (left to their leases) or only to
-- dead ones (given back at once). A process removes its row when it closes the store.
CREATE TABLE instances (
  id         TEXT    PRIMARY KEY,
  host       TEXT    NOT NULL,
  pid        INTEGER NOT NULL,
  started_at INTEGER NOT NULL
) WITHOUT ROWID;
