-- ACME (RFC 8555): provisioners, the nonce key and used nonces, accounts,
-- external account binding keys, orders, authorizations and challenges;
-- and the operator's "renew now" mark on certificates (RFC 9773).

CREATE TABLE acme_provisioners (
    id               text        NOT NULL PRIMARY KEY,
    name             text        NOT NULL UNIQUE,
    ca_id            text        NOT NULL,
    profile          text        NOT NULL,
    challenges       text        NOT NULL, -- JSON array of challenge types, in order
    allow_names      text        NOT NULL, -- JSON array; empty allows every name
    require_eab      boolean     NOT NULL,
    terms_of_service text        NOT NULL,
    website          text        NOT NULL,
    created_at       timestamptz NOT NULL,
    created_by       text        NOT NULL
);

-- The key nonces are MACed with, shared by every replica.
CREATE TABLE acme_nonce_key (
    id  integer NOT NULL PRIMARY KEY CHECK (id = 1),
    key bytea   NOT NULL
);

-- Nonces already used, kept until they would have expired anyway.
CREATE TABLE acme_nonces_used (
    id         text        NOT NULL PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX acme_nonces_used_expires ON acme_nonces_used (expires_at);

CREATE TABLE acme_accounts (
    id             text        NOT NULL PRIMARY KEY,
    provisioner_id text        NOT NULL,
    key_thumbprint text        NOT NULL, -- RFC 7638, base64url
    key_jwk        bytea       NOT NULL,
    contact        text        NOT NULL, -- JSON array of URLs
    status         text        NOT NULL,
    terms_agreed   boolean     NOT NULL,
    eab_key_id     text,
    principal_id   text,
    created_at     timestamptz NOT NULL,
    created_ip     text        NOT NULL,
    UNIQUE (provisioner_id, key_thumbprint)
);
-- Rate limit: new accounts per provisioner and address.
CREATE INDEX acme_accounts_created_ip ON acme_accounts (provisioner_id, created_ip, created_at);

CREATE TABLE acme_eab_keys (
    id             text        NOT NULL PRIMARY KEY,
    provisioner_id text        NOT NULL,
    principal_id   text        NOT NULL,
    description    text        NOT NULL,
    sealed         bytea       NOT NULL, -- the HMAC key sealed under the KEK
    created_at     timestamptz NOT NULL,
    created_by     text        NOT NULL,
    account_id     text,                 -- NULL until the key binds an account
    bound_at       timestamptz
);
CREATE INDEX acme_eab_keys_provisioner ON acme_eab_keys (provisioner_id);

-- id sorts bytewise, as on SQLite: it breaks ties when listing by creation.
CREATE TABLE acme_orders (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,
    account_id     text        NOT NULL,
    provisioner_id text        NOT NULL,
    status         text        NOT NULL,
    identifiers    text        NOT NULL, -- JSON array of {type, value}
    not_before     timestamptz,          -- NULL when the client asked for none
    not_after      timestamptz,
    expires        timestamptz NOT NULL,
    authz_ids      text        NOT NULL, -- JSON array, in identifier order
    error          text,                 -- JSON problem document
    cert_serial    text,
    replaces       text,                 -- ARI certificate ID
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- Listing an account's orders in (created_at, id) order and counting its
-- recent ones (rate limit).
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at, id);
CREATE INDEX acme_orders_cert_serial ON acme_orders (cert_serial);
CREATE INDEX acme_orders_replaces ON acme_orders (replaces);

CREATE TABLE acme_authorizations (
    id             text        NOT NULL PRIMARY KEY,
    account_id     text        NOT NULL,
    provisioner_id text        NOT NULL,
    ident_type     text        NOT NULL,
    ident_value    text        NOT NULL,
    wildcard       boolean     NOT NULL,
    status         text        NOT NULL,
    expires        timestamptz NOT NULL,
    created_at     timestamptz NOT NULL
);
-- Finding a valid authorization to reuse.
CREATE INDEX acme_authorizations_reuse ON acme_authorizations
    (account_id, ident_type, ident_value, status, expires);
-- Counting an account's pending authorizations (rate limit).
CREATE INDEX acme_authorizations_status ON acme_authorizations (account_id, status, expires);

CREATE TABLE acme_challenges (
    id        text        NOT NULL PRIMARY KEY,
    authz_id  text        NOT NULL,
    position  integer     NOT NULL, -- order within the authorization
    type      text        NOT NULL,
    token     text        NOT NULL,
    status    text        NOT NULL,
    validated timestamptz,
    error     text                  -- JSON problem document
);
CREATE INDEX acme_challenges_authz ON acme_challenges (authz_id, position);
-- Counting an account's recent failed validations (rate limit).
CREATE INDEX acme_challenges_failed ON acme_challenges (status, validated);

-- Set when an operator asks for the certificate to be replaced now.
ALTER TABLE certificates ADD COLUMN renew_now_at timestamptz;
