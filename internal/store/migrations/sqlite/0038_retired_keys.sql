-- Keys replaced in their record whose provider may still hold them: an
-- OCSP responder key in a PKCS#11 token stays there when its
-- ocsp_responders row is overwritten. PutOCSPResponder lists the key it
-- replaces here in the same transaction; the revocation service destroys
-- each in its provider once other replicas can no longer be signing with
-- it (README "CA keys in an HSM") and then deletes the row. A software
-- key, which ends with its record, has its row deleted at once. A
-- failed destruction leaves the row for the next try.
CREATE TABLE retired_keys (
    key_provider  TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    key_algorithm TEXT    NOT NULL,
    key_blob      BLOB,
    purpose       TEXT    NOT NULL, -- what the key was bound to: ocsp:<CA id>
    retired_at    INTEGER NOT NULL,
    PRIMARY KEY (key_provider, key_id)
) STRICT;
