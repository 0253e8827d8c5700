-- ACME (RFC 8555): provisioners, the nonce key and used nonces, accounts,
-- external account binding keys, orders, authorizations and challenges;
-- and the operator's "renew now" mark on certificates (RFC 9773).

CREATE TABLE acme_provisioners (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    ca_id            TEXT    NOT NULL,
    profile          TEXT    NOT NULL,
    challenges       TEXT    NOT NULL, -- JSON array of challenge types, in order
    allow_names      TEXT    NOT NULL, -- JSON array; empty allows every name
    require_eab      INTEGER NOT NULL,
    terms_of_service TEXT    NOT NULL,
    website          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    created_by       TEXT    NOT NULL
) STRICT;

-- The key nonces are MACed with, shared by every replica.
CREATE TABLE acme_nonce_key (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    key BLOB    NOT NULL
) STRICT;

-- Nonces already used, kept until they would have expired anyway.
CREATE TABLE acme_nonces_used (
    id         TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX acme_nonces_used_expires ON acme_nonces_used (expires_at);

CREATE TABLE acme_accounts (
    id             TEXT    NOT NULL PRIMARY KEY,
    provisioner_id TEXT    NOT NULL,
    key_thumbprint TEXT    NOT NULL, -- RFC 7638, base64url
    key_jwk        BLOB    NOT NULL,
    contact        TEXT    NOT NULL, -- JSON array of URLs
    status         TEXT    NOT NULL,
    terms_agreed   INTEGER NOT NULL,
    eab_key_id     TEXT,
    principal_id   TEXT,
    created_at     INTEGER NOT NULL,
    created_ip     TEXT    NOT NULL,
    UNIQUE (provisioner_id, key_thumbprint)
) STRICT;
-- Rate limit: new accounts per provisioner and address.
CREATE INDEX acme_accounts_created_ip ON acme_accounts (provisioner_id, created_ip, created_at);

CREATE TABLE acme_eab_keys (
    id             TEXT    NOT NULL PRIMARY KEY,
    provisioner_id TEXT    NOT NULL,
    principal_id   TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    sealed         BLOB    NOT NULL, -- the HMAC key sealed under the KEK
    created_at     INTEGER NOT NULL,
    created_by     TEXT    NOT NULL,
    account_id     TEXT,             -- NULL until the key binds an account
    bound_at       INTEGER
) STRICT;
CREATE INDEX acme_eab_keys_provisioner ON acme_eab_keys (provisioner_id);

CREATE TABLE acme_orders (
    id             TEXT    NOT NULL PRIMARY KEY,
    account_id     TEXT    NOT NULL,
    provisioner_id TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    identifiers    TEXT    NOT NULL, -- JSON array of {type, value}
    not_before     INTEGER,          -- NULL when the client asked for none
    not_after      INTEGER,
    expires        INTEGER NOT NULL,
    authz_ids      TEXT    NOT NULL, -- JSON array, in identifier order
    error          TEXT,             -- JSON problem document
    cert_serial    TEXT,
    replaces       TEXT,             -- ARI certificate ID
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
-- Listing an account's orders in (created_at, id) order and counting its
-- recent ones (rate limit).
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at, id);
CREATE INDEX acme_orders_cert_serial ON acme_orders (cert_serial);
CREATE INDEX acme_orders_replaces ON acme_orders (replaces);

CREATE TABLE acme_authorizations (
    id             TEXT    NOT NULL PRIMARY KEY,
    account_id     TEXT    NOT NULL,
    provisioner_id TEXT    NOT NULL,
    ident_type     TEXT    NOT NULL,
    ident_value    TEXT    NOT NULL,
    wildcard       INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    expires        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
-- Finding a valid authorization to reuse.
CREATE INDEX acme_authorizations_reuse ON acme_authorizations
    (account_id, ident_type, ident_value, status, expires);
-- Counting an account's pending authorizations (rate limit).
CREATE INDEX acme_authorizations_status ON acme_authorizations (account_id, status, expires);

CREATE TABLE acme_challenges (
    id        TEXT    NOT NULL PRIMARY KEY,
    authz_id  TEXT    NOT NULL,
    position  INTEGER NOT NULL, -- order within the authorization
    type      TEXT    NOT NULL,
    token     TEXT    NOT NULL,
    status    TEXT    NOT NULL,
    validated INTEGER,
    error     TEXT              -- JSON problem document
) STRICT;
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id, position);
-- Counting an account's recent failed validations (rate limit).
CREATE INDEX acme_challenges_failed ON acme_challenges (status, validated);

-- Set when an operator asks for the certificate to be replaced now.
ALTER TABLE certificates ADD COLUMN renew_now_at INTEGER;
