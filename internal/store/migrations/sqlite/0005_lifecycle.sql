-- Lifecycle automation: where a certificate came from and who owns it,
-- renewal links and state, imported certificates' chains, alerts and their
-- deliveries, scheduled job state, emergency rotations.

-- source: 'issued' (signed here) or 'imported' (issued elsewhere; keyed by
-- its SHA-256 fingerprint, its own serial in issuer_serial).
ALTER TABLE certificates ADD COLUMN source        TEXT    NOT NULL DEFAULT 'issued';
ALTER TABLE certificates ADD COLUMN owner         TEXT    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN issuer        TEXT    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN issuer_serial TEXT    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN chain_der     TEXT    NOT NULL DEFAULT '[]'; -- JSON array of base64 DER (imported bundles)
-- auto_renew: the server renews this certificate itself at its profile's threshold.
ALTER TABLE certificates ADD COLUMN auto_renew    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN replaces      TEXT    NOT NULL DEFAULT ''; -- predecessor's serial
ALTER TABLE certificates ADD COLUMN renewed_by    TEXT    NOT NULL DEFAULT ''; -- successor's serial
-- renewal_kind: how this certificate replaced its predecessor: auto, agent,
-- acme, rotate (no person involved) or manual.
ALTER TABLE certificates ADD COLUMN renewal_kind  TEXT    NOT NULL DEFAULT '';
-- Renewal state of an auto_renew certificate: failures so far, when to try
-- again, the last error, and when to revoke it as superseded.
ALTER TABLE certificates ADD COLUMN renew_failures   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN renew_retry_at   INTEGER;
ALTER TABLE certificates ADD COLUMN renew_error      TEXT    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN supersede_at     INTEGER;

-- Certificates the renewal job looks at, by expiry: never a table scan.
CREATE INDEX certificates_auto_renew ON certificates (not_after) WHERE auto_renew = 1 AND renewed_by = '';
CREATE INDEX certificates_supersede ON certificates (supersede_at) WHERE supersede_at IS NOT NULL;
CREATE INDEX certificates_renew_now ON certificates (renew_now_at) WHERE renew_now_at IS NOT NULL;
CREATE INDEX certificates_replaces ON certificates (replaces) WHERE replaces <> '';
-- Imported certificates, counted for metrics and reports.
CREATE INDEX certificates_imported ON certificates (not_after) WHERE source = 'imported';

-- Every renewal attempt, for the compliance report's KPIs.
CREATE TABLE renewal_attempts (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    serial     TEXT    NOT NULL, -- the certificate being replaced
    new_serial TEXT    NOT NULL, -- '' when it failed
    kind       TEXT    NOT NULL, -- auto, agent, acme, rotate, manual
    ok         INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    days_left  REAL    NOT NULL  -- days the old certificate had left
) STRICT;
CREATE INDEX renewal_attempts_at ON renewal_attempts (at);

-- One row per alert ever raised: the unique key de-duplicates across runs
-- and replicas (one alert per subject, kind and threshold).
CREATE TABLE alerts (
    id         TEXT    NOT NULL PRIMARY KEY,
    subject    TEXT    NOT NULL, -- certificate serial, or ca:<id>, crl:<ca id>, ocsp:<ca id>, test:<channel>
    kind       TEXT    NOT NULL,
    threshold  TEXT    NOT NULL, -- e.g. 30d; '' when the kind has none
    created_at INTEGER NOT NULL,
    payload    TEXT    NOT NULL, -- JSON of the alert
    UNIQUE (subject, kind, threshold)
) STRICT;
CREATE INDEX alerts_created ON alerts (created_at);

-- Each alert's delivery to each routed channel, retried with backoff.
CREATE TABLE alert_deliveries (
    alert_id        TEXT    NOT NULL REFERENCES alerts (id),
    channel         TEXT    NOT NULL,
    status          TEXT    NOT NULL, -- pending, sent, failed (gave up)
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    sent_at         INTEGER,
    PRIMARY KEY (alert_id, channel)
) STRICT;
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

-- Scheduled jobs: the last run's outcome and a cursor the job keeps.
CREATE TABLE jobs (
    name         TEXT    NOT NULL PRIMARY KEY,
    started_at   INTEGER,
    finished_at  INTEGER,
    outcome      TEXT    NOT NULL, -- ok, error, skipped
    detail       TEXT    NOT NULL,
    cursor       INTEGER  -- job-defined, e.g. the expiry check's last "now"
) STRICT;

-- Emergency rotations and the certificates each one replaces.
CREATE TABLE rotations (
    id            TEXT    NOT NULL PRIMARY KEY,
    selector      TEXT    NOT NULL, -- JSON inventory.Selector
    to_ca         TEXT    NOT NULL, -- CA re-issued certificates come from; empty: their own
    reason        TEXT    NOT NULL, -- revocation reason for the old certificates
    grace_seconds INTEGER NOT NULL,
    status        TEXT    NOT NULL, -- running, done
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
) STRICT;

CREATE TABLE rotation_items (
    rotation_id TEXT    NOT NULL REFERENCES rotations (id),
    serial      TEXT    NOT NULL,
    method      TEXT    NOT NULL, -- reissue (server holds the key) or signal (agent or ACME client replaces it)
    status      TEXT    NOT NULL, -- pending, replaced, revoked, failed
    new_serial  TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (rotation_id, serial)
) STRICT, WITHOUT ROWID;
