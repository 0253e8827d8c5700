-- Several replicas (issue 18): a job runs on one replica at a time under a
-- lease in job_leases, timed by the database's clock; the job's last run
-- names the replica that ran it; an alert delivery is claimed by one
-- replica before it is sent.

-- One row per job (or other single-runner task) ever leased. holder is
-- random per acquisition; a lease whose expires_at has passed is free.
CREATE TABLE job_leases (
    name        TEXT    NOT NULL PRIMARY KEY,
    holder      TEXT    NOT NULL,
    replica     TEXT    NOT NULL, -- replica_name of the holder
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

ALTER TABLE jobs ADD COLUMN replica TEXT NOT NULL DEFAULT '';

-- claimed_by: the claim token of the replica sending the delivery now ('' for
-- none); the claim lapses at claimed_until.
ALTER TABLE alert_deliveries ADD COLUMN claimed_by    TEXT NOT NULL DEFAULT '';
ALTER TABLE alert_deliveries ADD COLUMN claimed_until INTEGER;
