-- Times are INTEGER Unix microseconds, UTC. Slices are JSON arrays in TEXT.

CREATE TABLE cas (
    id               TEXT    NOT NULL PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    parent_id        TEXT    NOT NULL,
    external         INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    key_provider     TEXT    NOT NULL,
    key_id           TEXT    NOT NULL,
    key_algorithm    TEXT    NOT NULL,
    key_blob         BLOB,
    cert_der         BLOB,
    csr_der          BLOB,
    chain_der        TEXT    NOT NULL, -- JSON array of base64 DER, nearest issuer first
    previous_status  TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    restorable_until INTEGER
) STRICT;

CREATE INDEX cas_created_at ON cas (created_at, id);

-- No foreign key to cas: certificate rows outlive a purged CA.
CREATE TABLE certificates (
    serial                TEXT    NOT NULL PRIMARY KEY,
    ca_id                 TEXT    NOT NULL,
    profile               TEXT    NOT NULL,
    requester             TEXT    NOT NULL,
    subject               TEXT    NOT NULL,
    sans                  TEXT    NOT NULL,
    not_before            INTEGER NOT NULL,
    not_after             INTEGER NOT NULL,
    key_algorithm         TEXT    NOT NULL,
    key_bits              INTEGER NOT NULL,
    signature_algorithm   TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    fingerprint           TEXT    NOT NULL,
    tags                  TEXT    NOT NULL,
    lint_warnings         TEXT    NOT NULL,
    der                   BLOB    NOT NULL,
    managed_key_provider  TEXT, -- NULL when the server kept no key
    managed_key_id        TEXT,
    managed_key_algorithm TEXT,
    managed_key_blob      BLOB,
    created_at            INTEGER NOT NULL
) STRICT;

-- Each index ends in serial so a filtered listing walks it in page order.
CREATE INDEX certificates_ca_id ON certificates (ca_id, serial);
CREATE INDEX certificates_profile ON certificates (profile, serial);
CREATE INDEX certificates_not_after ON certificates (not_after);

-- The names a certificate is searched by: kind 'san' (value lowercased) or 'tag'.
CREATE TABLE certificate_names (
    kind   TEXT NOT NULL,
    value  TEXT NOT NULL,
    serial TEXT NOT NULL REFERENCES certificates (serial),
    PRIMARY KEY (kind, value, serial)
) STRICT, WITHOUT ROWID;

CREATE TABLE profiles (
    name TEXT NOT NULL PRIMARY KEY,
    doc  BLOB NOT NULL
) STRICT;

CREATE TABLE tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
