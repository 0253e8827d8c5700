-- SCEP (RFC 8894): provisioners, their one-time challenges, and the
-- transactions held for approval that devices poll (GetCertInitial).

CREATE TABLE scep_provisioners (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    ca_id        TEXT    NOT NULL,
    profile      TEXT    NOT NULL,
    challenge    TEXT    NOT NULL, -- static | dynamic
    static_salt  BLOB    NOT NULL, -- empty for dynamic
    static_hash  BLOB    NOT NULL, -- SHA-256(salt || secret); empty for dynamic
    principal_id TEXT    NOT NULL, -- the principal enrolments act as
    ra_serial    TEXT    NOT NULL, -- the RA certificate (its key is the server's, wrapped)
    ra_sha256    TEXT    NOT NULL, -- its fingerprint, which devices pin (scepclient -ca-fingerprint)
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    disabled_at  INTEGER,
    disabled_by  TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE scep_challenges (
    id             TEXT    NOT NULL PRIMARY KEY,
    provisioner_id TEXT    NOT NULL,
    hash           BLOB    NOT NULL UNIQUE, -- SHA-256 of the challenge
    identity       TEXT    NOT NULL,        -- '' or the name the CSR must carry
    created_at     INTEGER NOT NULL,
    created_by     TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,                 -- NULL until consumed
    used_by        TEXT    NOT NULL DEFAULT '' -- the transaction that consumed it
) STRICT;
CREATE INDEX scep_challenges_provisioner ON scep_challenges (provisioner_id, created_at);

CREATE TABLE scep_transactions (
    provisioner_id TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    request_id     TEXT    NOT NULL, -- the approval request
    key_hash       BLOB    NOT NULL, -- SHA-256 of the requester's SubjectPublicKeyInfo
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (provisioner_id, transaction_id)
) STRICT;
