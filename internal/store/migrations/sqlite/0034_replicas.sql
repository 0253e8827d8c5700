-- The replica registry (README "Several replicas"). SQLite has one
-- process and never writes it; the table keeps both schemas alike.
CREATE TABLE replicas (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    config_digest TEXT    NOT NULL,
    settings      TEXT    NOT NULL
) STRICT;
CREATE INDEX replicas_last_seen ON replicas (last_seen);
