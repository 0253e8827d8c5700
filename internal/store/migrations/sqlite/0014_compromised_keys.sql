-- Keys reported compromised: the issuance path never certifies a public key
-- whose SPKI SHA-256 is listed here again (an indexed lookup per request).
-- A row is written when an emergency rotation by key (--key-spki) starts,
-- and when a certificate is revoked with reason keyCompromise, in the same
-- transaction. The first report stands; rows are never deleted.
CREATE TABLE compromised_keys (
    spki_sha256 TEXT    NOT NULL PRIMARY KEY, -- lower-case hex
    reported_at INTEGER NOT NULL,
    source      TEXT    NOT NULL, -- rotation or revocation
    ref         TEXT    NOT NULL, -- the rotation's id, or the revoked certificate's serial
    reported_by TEXT    NOT NULL  -- principal name ('' when filled in by this migration)
) STRICT, WITHOUT ROWID;

-- Reported before this migration: rotations by key, then certificates
-- revoked as keyCompromise.
INSERT INTO compromised_keys (spki_sha256, reported_at, source, ref, reported_by)
SELECT lower(json_extract(selector, '$.spki_sha256')), MIN(created_at), 'rotation', MIN(id), ''
FROM rotations
WHERE COALESCE(json_extract(selector, '$.spki_sha256'), '') <> ''
GROUP BY lower(json_extract(selector, '$.spki_sha256'));

INSERT INTO compromised_keys (spki_sha256, reported_at, source, ref, reported_by)
SELECT c.spki_sha256, MIN(r.revoked_at), 'revocation', MIN(c.serial), ''
FROM revocations r JOIN certificates c ON c.serial = r.serial
WHERE r.reason = 1 AND r.ca = 0 AND c.spki_sha256 <> ''
GROUP BY c.spki_sha256
ON CONFLICT (spki_sha256) DO NOTHING;
