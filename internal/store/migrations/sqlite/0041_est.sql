-- EST (RFC 7030) provisioners and their one-time enrolment secrets
-- (README "EST device enrolment"). bootstrap_pem is the manufacturer
-- (IDevID) CA bundle devices authenticate with; identity_from says what
-- of an IDevID a device may enrol for ("serial" or "san:PATTERN").
-- A secret is kept as its SHA-256 only; used_at is set once, by the
-- enrolment that consumes it (use_token names that enrolment, so that
-- only it can hand the secret back when issuance fails).
CREATE TABLE est_provisioners (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    ca_id           TEXT    NOT NULL,
    profile         TEXT    NOT NULL,
    auth            TEXT    NOT NULL,
    bootstrap_pem   TEXT    NOT NULL,
    identity_from   TEXT    NOT NULL,
    server_keygen   INTEGER NOT NULL,
    reenroll_grace  INTEGER NOT NULL, -- seconds
    created_at      INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    disabled_at     INTEGER,
    disabled_by     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE est_secrets (
    id             TEXT    NOT NULL PRIMARY KEY,
    provisioner_id TEXT    NOT NULL REFERENCES est_provisioners (id) ON DELETE CASCADE,
    identity       TEXT    NOT NULL,
    secret_hash    BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    used_from      TEXT    NOT NULL DEFAULT '',
    use_token      TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX est_secrets_provisioner ON est_secrets (provisioner_id, created_at);
