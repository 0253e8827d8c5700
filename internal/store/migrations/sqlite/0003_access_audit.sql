-- Access control and audit: principals with tokens, mTLS identities and role
-- bindings; custom roles; requests held for approval; the hash-chained
-- audit log with its signed checkpoints and the key that signs them.

CREATE TABLE principals (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL, -- human | machine
    description TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    disabled_at INTEGER
) STRICT;

-- Tokens written before this migration each become a principal of their
-- own (named after the token, the ID appended where names repeat) bound
-- to the token's role.
INSERT INTO principals (id, name, kind, description, created_at, created_by)
SELECT 'p' || id,
       name || CASE WHEN (SELECT count(*) FROM tokens t2 WHERE t2.name = tokens.name) > 1 THEN '-' || id ELSE '' END,
       'human', 'created from token ' || id, created_at, 'migration'
FROM tokens;

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    principal_id TEXT    NOT NULL REFERENCES principals (id),
    description  TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL, -- SHA-256 of the secret; the secret is never stored
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);

INSERT INTO api_tokens (id, principal_id, description, secret_hash, created_at)
SELECT id, 'p' || id, name, secret_hash, created_at FROM tokens;

-- Custom roles only: the built-in roles live in code.
CREATE TABLE roles (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    permissions TEXT    NOT NULL, -- JSON array
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE role_bindings (
    id           TEXT    NOT NULL PRIMARY KEY,
    principal_id TEXT    NOT NULL REFERENCES principals (id),
    role         TEXT    NOT NULL,
    cas          TEXT    NOT NULL, -- JSON arrays; empty means no limit
    profiles     TEXT    NOT NULL,
    names        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL
) STRICT;
CREATE INDEX role_bindings_principal ON role_bindings (principal_id);

INSERT INTO role_bindings (id, principal_id, role, cas, profiles, names, created_at, created_by)
SELECT 'b' || id, 'p' || id, role, '[]', '[]', '[]', created_at, 'migration' FROM tokens;

DROP TABLE tokens;

-- Client-certificate names (SAN URI or DNS name) that authenticate as a principal.
CREATE TABLE principal_identities (
    kind         TEXT    NOT NULL, -- uri | dns
    value        TEXT    NOT NULL,
    principal_id TEXT    NOT NULL REFERENCES principals (id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) STRICT;

-- Issuance requests under a profile that requires approval.
CREATE TABLE approval_requests (
    id           TEXT    NOT NULL PRIMARY KEY,
    requester_id TEXT    NOT NULL,
    requester    TEXT    NOT NULL,
    ca           TEXT    NOT NULL, -- CA name
    profile      TEXT    NOT NULL,
    names        TEXT    NOT NULL, -- JSON array: the names the certificate would carry
    body         BLOB    NOT NULL, -- the request itself (JSON)
    status       TEXT    NOT NULL, -- pending | approved | issued | rejected | expired | failed
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    decided_by   TEXT    NOT NULL,
    decided_at   INTEGER,
    comment      TEXT    NOT NULL,
    serial       TEXT    NOT NULL,
    error        TEXT    NOT NULL
) STRICT;
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);

-- The audit log. Each event commits to the previous one's hash; audit_head
-- holds the last sequence number and hash so appends need not scan.
CREATE TABLE audit_events (
    seq        INTEGER NOT NULL PRIMARY KEY,
    time       INTEGER NOT NULL,
    principal  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    details    TEXT    NOT NULL, -- JSON object, hashed byte for byte
    prev_hash  BLOB    NOT NULL,
    hash       BLOB    NOT NULL
) STRICT;
CREATE INDEX audit_events_time ON audit_events (time, seq);

-- Reports: certificates issued and revocations made in a period.
CREATE INDEX certificates_created_at ON certificates (created_at, serial);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at, serial);

CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Append-only as far as SQL goes. Anyone who can drop these triggers can
-- rewrite rows; the hash chain and signed checkpoints catch that.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL PRIMARY KEY,
    hash      BLOB    NOT NULL,
    time      INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL
) STRICT;

-- The key that signs checkpoints, wrapped by the key-encryption key.
CREATE TABLE audit_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    key_provider  TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    key_algorithm TEXT    NOT NULL,
    key_blob      BLOB,
    public_key    BLOB    NOT NULL, -- SubjectPublicKeyInfo DER
    created_at    INTEGER NOT NULL
) STRICT;
