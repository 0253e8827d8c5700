-- Each scheduled job's run history (README "Scheduled jobs", certwright
-- jobs runs): one row per recorded run, written in the same transaction
-- as the job's last run in jobs, so the two never disagree. A skipped run
-- (another replica held the lock, or ran the job less than an interval
-- ago) is not recorded. Each insert prunes the job's runs older than 7
-- days before the new one, and all but its newest 1,000.
CREATE TABLE job_runs (
    id          INTEGER NOT NULL PRIMARY KEY,
    job         TEXT    NOT NULL,
    replica     TEXT    NOT NULL, -- replica_name of the replica that ran it
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT    NOT NULL, -- ok, error
    detail      TEXT    NOT NULL
) STRICT;
-- One job's runs since a time, and its pruning; every job's since a
-- time. Ties in started_at (a coarse clock) go by id, newest first.
CREATE INDEX job_runs_job ON job_runs (job, started_at, id);
CREATE INDEX job_runs_started ON job_runs (started_at, id);
