-- EST (RFC 7030) provisioners and their one-time enrolment secrets
-- (README "EST device enrolment"). bootstrap_pem is the manufacturer
-- (IDevID) CA bundle devices authenticate with; identity_from says what
-- of an IDevID a device may enrol for ("serial" or "san:PATTERN").
-- A secret is kept as its SHA-256 only; used_at is set once, by the
-- enrolment that consumes it (use_token names that enrolment, so that
-- only it can hand the secret back when issuance fails).
CREATE TABLE est_provisioners (
    id              text        NOT NULL PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    ca_id           text        NOT NULL,
    profile         text        NOT NULL,
    auth            text        NOT NULL,
    bootstrap_pem   text        NOT NULL,
    identity_from   text        NOT NULL,
    server_keygen   boolean     NOT NULL,
    reenroll_grace  bigint      NOT NULL, -- seconds
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    disabled_at     timestamptz,
    disabled_by     text        NOT NULL DEFAULT ''
);

CREATE TABLE est_secrets (
    id             text        NOT NULL PRIMARY KEY,
    provisioner_id text        NOT NULL REFERENCES est_provisioners (id) ON DELETE CASCADE,
    identity       text        NOT NULL,
    secret_hash    bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    created_by     text        NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    used_from      text        NOT NULL DEFAULT '',
    use_token      text        NOT NULL DEFAULT ''
);
CREATE INDEX est_secrets_provisioner ON est_secrets (provisioner_id, created_at);
