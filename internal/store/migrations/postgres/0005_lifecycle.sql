-- Lifecycle automation: where a certificate came from and who owns it,
-- renewal links and state, imported certificates' chains, alerts and their
-- deliveries, scheduled job state, emergency rotations.

-- source: 'issued' (signed here) or 'imported' (issued elsewhere; keyed by
-- its SHA-256 fingerprint, its own serial in issuer_serial).
ALTER TABLE certificates ADD COLUMN source        text    NOT NULL DEFAULT 'issued';
ALTER TABLE certificates ADD COLUMN owner         text    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN issuer        text    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN issuer_serial text    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN chain_der     jsonb   NOT NULL DEFAULT '[]'; -- JSON array of base64 DER (imported bundles)
-- auto_renew: the server renews this certificate itself at its profile's threshold.
ALTER TABLE certificates ADD COLUMN auto_renew    boolean NOT NULL DEFAULT false;
ALTER TABLE certificates ADD COLUMN replaces      text    NOT NULL DEFAULT ''; -- predecessor's serial
ALTER TABLE certificates ADD COLUMN renewed_by    text    NOT NULL DEFAULT ''; -- successor's serial
-- renewal_kind: how this certificate replaced its predecessor: auto, agent,
-- acme, rotate (no person involved) or manual.
ALTER TABLE certificates ADD COLUMN renewal_kind  text    NOT NULL DEFAULT '';
-- Renewal state of an auto_renew certificate: failures so far, when to try
-- again, the last error, and when to revoke it as superseded.
ALTER TABLE certificates ADD COLUMN renew_failures   integer NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN renew_retry_at   timestamptz;
ALTER TABLE certificates ADD COLUMN renew_error      text    NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN supersede_at   timestamptz;

-- Certificates the renewal job looks at, by expiry: never a table scan.
CREATE INDEX certificates_auto_renew ON certificates (not_after) WHERE auto_renew AND renewed_by = '';
CREATE INDEX certificates_supersede ON certificates (supersede_at) WHERE supersede_at IS NOT NULL;
CREATE INDEX certificates_renew_now ON certificates (renew_now_at) WHERE renew_now_at IS NOT NULL;
CREATE INDEX certificates_replaces ON certificates (replaces) WHERE replaces <> '';
-- Imported certificates, counted for metrics and reports.
CREATE INDEX certificates_imported ON certificates (not_after) WHERE source = 'imported';

-- Every renewal attempt, for the compliance report's KPIs.
CREATE TABLE renewal_attempts (
    id         bigserial PRIMARY KEY,
    serial     text    NOT NULL, -- the certificate being replaced
    new_serial text    NOT NULL, -- '' when it failed
    kind       text    NOT NULL, -- auto, agent, acme, rotate, manual
    ok         boolean NOT NULL,
    error      text    NOT NULL,
    at         timestamptz NOT NULL,
    days_left  double precision    NOT NULL  -- days the old certificate had left
);
CREATE INDEX renewal_attempts_at ON renewal_attempts (at);

-- One row per alert ever raised: the unique key de-duplicates across runs
-- and replicas (one alert per subject, kind and threshold).
CREATE TABLE alerts (
    id         text    NOT NULL PRIMARY KEY,
    subject    text    NOT NULL, -- certificate serial, or ca:<id>, crl:<ca id>, ocsp:<ca id>, test:<channel>
    kind       text    NOT NULL,
    threshold  text    NOT NULL, -- e.g. 30d; '' when the kind has none
    created_at timestamptz NOT NULL,
    payload    text    NOT NULL, -- JSON of the alert
    UNIQUE (subject, kind, threshold)
);
CREATE INDEX alerts_created ON alerts (created_at);

-- Each alert's delivery to each routed channel, retried with backoff.
CREATE TABLE alert_deliveries (
    alert_id        text    NOT NULL REFERENCES alerts (id),
    channel         text    NOT NULL,
    status          text    NOT NULL, -- pending, sent, failed (gave up)
    attempts        integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    last_error      text    NOT NULL,
    sent_at         timestamptz,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

-- Scheduled jobs: the last run's outcome and a cursor the job keeps.
CREATE TABLE jobs (
    name         text    NOT NULL PRIMARY KEY,
    started_at   timestamptz,
    finished_at  timestamptz,
    outcome      text    NOT NULL, -- ok, error, skipped
    detail       text    NOT NULL,
    cursor       timestamptz  -- job-defined, e.g. the expiry check's last "now"
);

-- Emergency rotations and the certificates each one replaces.
CREATE TABLE rotations (
    id            text    NOT NULL PRIMARY KEY,
    selector      text    NOT NULL, -- JSON inventory.Selector
    to_ca         text    NOT NULL, -- CA re-issued certificates come from; empty: their own
    reason        text    NOT NULL, -- revocation reason for the old certificates
    grace_seconds integer NOT NULL,
    status        text    NOT NULL, -- running, done
    created_by    text    NOT NULL,
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz
);

CREATE TABLE rotation_items (
    rotation_id text    NOT NULL REFERENCES rotations (id),
    serial      text    NOT NULL,
    method      text    NOT NULL, -- reissue (server holds the key) or signal (agent or ACME client replaces it)
    status      text    NOT NULL, -- pending, replaced, revoked, failed
    new_serial  text    NOT NULL,
    error       text    NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (rotation_id, serial)
);
