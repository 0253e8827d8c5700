-- Revocation: the public key's identity on every certificate, the
-- revocations themselves, each CA's CRL number and delegated OCSP responder.

-- Hex SHA-256 of the SubjectPublicKeyInfo. Rows written before this
-- migration are filled in by Open (store.backfillSPKI), not here: SQL cannot
-- parse DER.
ALTER TABLE certificates ADD COLUMN spki_sha256 TEXT NOT NULL DEFAULT '';
CREATE INDEX certificates_spki_sha256 ON certificates (spki_sha256, serial);
-- Refreshing a CA's OCSP responses walks its unexpired certificates from
-- this index alone (the revoked ones from revocations_crl).
CREATE INDEX certificates_ca_unexpired ON certificates (ca_id, not_after, serial, status);

-- One row per revoked serial: a leaf from certificates, or a subordinate
-- CA's own certificate (ca = 1, ca_id its parent). Permanent; the first
-- record stands. No foreign key: a CA's certificate has no certificates row.
CREATE TABLE revocations (
    serial          TEXT    NOT NULL PRIMARY KEY,
    ca_id           TEXT    NOT NULL, -- the issuing CA, whose CRL lists it
    revoked_at      INTEGER NOT NULL,
    reason          INTEGER NOT NULL, -- RFC 5280 CRLReason code
    invalidity_date INTEGER,          -- NULL when not given
    revoked_by      TEXT    NOT NULL,
    not_after       INTEGER NOT NULL, -- the revoked certificate's
    ca              INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Building a CRL reads a CA's unexpired revocations from this index alone,
-- never the table.
CREATE INDEX revocations_crl ON revocations
    (ca_id, not_after, serial, revoked_at, reason, invalidity_date, revoked_by, ca);

CREATE TABLE crl_numbers (
    ca_id  TEXT    NOT NULL PRIMARY KEY,
    number INTEGER NOT NULL -- the last number issued
) STRICT;

-- A CA's current delegated OCSP responder certificate and its wrapped key.
CREATE TABLE ocsp_responders (
    ca_id         TEXT    NOT NULL PRIMARY KEY,
    cert_der      BLOB    NOT NULL,
    key_provider  TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    key_algorithm TEXT    NOT NULL,
    key_blob      BLOB,
    not_after     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
