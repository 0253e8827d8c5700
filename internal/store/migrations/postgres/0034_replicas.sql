-- The replica registry (README "Several replicas"): one row per running
-- serve process, written at start, its last_seen moved by a heartbeat
-- every 5 seconds on the database's clock, deleted at a clean shutdown.
-- A replica starts only if every replica seen in the last 15 seconds
-- runs with the same config_digest; settings holds the settings that
-- digest covers (JSON, secrets as digests) so that a refusal can name
-- the ones that differ.
CREATE TABLE replicas (
    id            text        NOT NULL PRIMARY KEY,
    name          text        NOT NULL,
    version       text        NOT NULL,
    started_at    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    config_digest text        NOT NULL,
    settings      text        NOT NULL
);
CREATE INDEX replicas_last_seen ON replicas (last_seen);
