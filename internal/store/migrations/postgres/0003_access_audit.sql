-- Access control and audit: principals with tokens, mTLS identities and role
-- bindings; custom roles; requests held for approval; the hash-chained
-- audit log with its signed checkpoints and the key that signs them.

CREATE TABLE principals (
    id          text        NOT NULL PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    kind        text        NOT NULL, -- human | machine
    description text        NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    disabled_at timestamptz
);

-- Tokens written before this migration each become a principal of their
-- own (named after the token, the ID appended where names repeat) bound
-- to the token's role.
INSERT INTO principals (id, name, kind, description, created_at, created_by)
SELECT 'p' || id,
       name || CASE WHEN (SELECT count(*) FROM tokens t2 WHERE t2.name = tokens.name) > 1 THEN '-' || id ELSE '' END,
       'human', 'created from token ' || id, created_at, 'migration'
FROM tokens;

CREATE TABLE api_tokens (
    id           text        NOT NULL PRIMARY KEY,
    principal_id text        NOT NULL REFERENCES principals (id),
    description  text        NOT NULL,
    secret_hash  bytea       NOT NULL, -- SHA-256 of the secret; the secret is never stored
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);

INSERT INTO api_tokens (id, principal_id, description, secret_hash, created_at)
SELECT id, 'p' || id, name, secret_hash, created_at FROM tokens;

-- Custom roles only: the built-in roles live in code.
CREATE TABLE roles (
    name        text        NOT NULL PRIMARY KEY,
    description text        NOT NULL,
    permissions text        NOT NULL, -- JSON array
    created_at  timestamptz NOT NULL
);

CREATE TABLE role_bindings (
    id           text        NOT NULL PRIMARY KEY,
    principal_id text        NOT NULL REFERENCES principals (id),
    role         text        NOT NULL,
    cas          text        NOT NULL, -- JSON arrays; empty means no limit
    profiles     text        NOT NULL,
    names        text        NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL
);
CREATE INDEX role_bindings_principal ON role_bindings (principal_id);

INSERT INTO role_bindings (id, principal_id, role, cas, profiles, names, created_at, created_by)
SELECT 'b' || id, 'p' || id, role, '[]', '[]', '[]', created_at, 'migration' FROM tokens;

DROP TABLE tokens;

-- Client-certificate names (SAN URI or DNS name) that authenticate as a principal.
CREATE TABLE principal_identities (
    kind         text        NOT NULL, -- uri | dns
    value        text        NOT NULL,
    principal_id text        NOT NULL REFERENCES principals (id),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (kind, value)
);

-- Issuance requests under a profile that requires approval.
CREATE TABLE approval_requests (
    id           text        NOT NULL PRIMARY KEY,
    requester_id text        NOT NULL,
    requester    text        NOT NULL,
    ca           text        NOT NULL, -- CA name
    profile      text        NOT NULL,
    names        text        NOT NULL, -- JSON array: the names the certificate would carry
    body         bytea       NOT NULL, -- the request itself (JSON)
    status       text        NOT NULL, -- pending | approved | issued | rejected | expired | failed
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    decided_by   text        NOT NULL,
    decided_at   timestamptz,
    comment      text        NOT NULL,
    serial       text        NOT NULL,
    error        text        NOT NULL
);
CREATE INDEX approval_requests_status ON approval_requests (status, expires_at);

-- The audit log. Each event commits to the previous one's hash; audit_head
-- holds the last sequence number and hash so appends need not scan, and its
-- row lock orders concurrent appenders.
CREATE TABLE audit_events (
    seq        bigint      NOT NULL PRIMARY KEY,
    time       timestamptz NOT NULL,
    principal  text        NOT NULL,
    source     text        NOT NULL,
    action     text        NOT NULL,
    target     text        NOT NULL,
    outcome    text        NOT NULL,
    request_id text        NOT NULL,
    details    text        NOT NULL, -- JSON object, hashed byte for byte (not jsonb, which rewrites it)
    prev_hash  bytea       NOT NULL,
    hash       bytea       NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time, seq);

-- Reports: certificates issued and revocations made in a period.
CREATE INDEX certificates_created_at ON certificates (created_at, serial);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at, serial);

CREATE TABLE audit_head (
    id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Append-only as far as SQL goes. Anyone who can drop these triggers can
-- rewrite rows; the hash chain and signed checkpoints catch that.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE audit_checkpoints (
    seq       bigint      NOT NULL PRIMARY KEY,
    hash      bytea       NOT NULL,
    time      timestamptz NOT NULL,
    key_id    text        NOT NULL,
    signature bytea       NOT NULL
);

-- The key that signs checkpoints, wrapped by the key-encryption key.
CREATE TABLE audit_keys (
    id            text        NOT NULL PRIMARY KEY,
    key_provider  text        NOT NULL,
    key_id        text        NOT NULL,
    key_algorithm text        NOT NULL,
    key_blob      bytea,
    public_key    bytea       NOT NULL, -- SubjectPublicKeyInfo DER
    created_at    timestamptz NOT NULL
);
