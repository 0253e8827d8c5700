-- Identifiers compared with < or ORDER BY use COLLATE "C" so that ordering
-- and keyset paging are bytewise, as on SQLite, whatever the database locale.

CREATE TABLE cas (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    name             text        NOT NULL UNIQUE,
    kind             text        NOT NULL,
    parent_id        text        NOT NULL,
    external         boolean     NOT NULL,
    status           text        NOT NULL,
    key_provider     text        NOT NULL,
    key_id           text        NOT NULL,
    key_algorithm    text        NOT NULL,
    key_blob         bytea,
    cert_der         bytea,
    csr_der          bytea,
    chain_der        jsonb       NOT NULL, -- array of base64 DER, nearest issuer first
    previous_status  text        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    restorable_until timestamptz
);

CREATE INDEX cas_created_at ON cas (created_at, id);

-- No foreign key to cas: certificate rows outlive a purged CA.
CREATE TABLE certificates (
    serial                text COLLATE "C" NOT NULL PRIMARY KEY,
    ca_id                 text        NOT NULL,
    profile               text        NOT NULL,
    requester             text        NOT NULL,
    subject               text        NOT NULL,
    sans                  jsonb       NOT NULL,
    not_before            timestamptz NOT NULL,
    not_after             timestamptz NOT NULL,
    key_algorithm         text        NOT NULL,
    key_bits              integer     NOT NULL,
    signature_algorithm   text        NOT NULL,
    status                text        NOT NULL,
    fingerprint           text        NOT NULL,
    tags                  jsonb       NOT NULL,
    lint_warnings         jsonb       NOT NULL,
    der                   bytea       NOT NULL,
    managed_key_provider  text, -- NULL when the server kept no key
    managed_key_id        text,
    managed_key_algorithm text,
    managed_key_blob      bytea,
    created_at            timestamptz NOT NULL
);

-- Each index ends in serial so a filtered listing walks it in page order.
CREATE INDEX certificates_ca_id ON certificates (ca_id, serial);
CREATE INDEX certificates_profile ON certificates (profile, serial);
CREATE INDEX certificates_not_after ON certificates (not_after);

-- The names a certificate is searched by: kind 'san' (value lowercased) or 'tag'.
CREATE TABLE certificate_names (
    kind   text NOT NULL,
    value  text NOT NULL,
    serial text COLLATE "C" NOT NULL REFERENCES certificates (serial),
    PRIMARY KEY (kind, value, serial)
);

CREATE TABLE profiles (
    name text  NOT NULL PRIMARY KEY,
    doc  bytea NOT NULL
);

CREATE TABLE tokens (
    id          text        NOT NULL PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL,
    secret_hash bytea       NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE settings (
    name  text  NOT NULL PRIMARY KEY,
    value bytea NOT NULL
);
