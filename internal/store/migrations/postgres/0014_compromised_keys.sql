-- Keys reported compromised: the issuance path never certifies a public key
-- whose SPKI SHA-256 is listed here again (an indexed lookup per request).
-- A row is written when an emergency rotation by key (--key-spki) starts,
-- and when a certificate is revoked with reason keyCompromise, in the same
-- transaction. The first report stands; rows are never deleted.
CREATE TABLE compromised_keys (
    spki_sha256 text COLLATE "C" NOT NULL PRIMARY KEY, -- lower-case hex
    reported_at timestamptz NOT NULL,
    source      text        NOT NULL, -- rotation or revocation
    ref         text        NOT NULL, -- the rotation's id, or the revoked certificate's serial
    reported_by text        NOT NULL  -- principal name ('' when filled in by this migration)
);

-- Reported before this migration: rotations by key, then certificates
-- revoked as keyCompromise.
INSERT INTO compromised_keys (spki_sha256, reported_at, source, ref, reported_by)
SELECT lower(selector::jsonb ->> 'spki_sha256'), MIN(created_at), 'rotation', MIN(id), ''
FROM rotations
WHERE COALESCE(selector::jsonb ->> 'spki_sha256', '') <> ''
GROUP BY lower(selector::jsonb ->> 'spki_sha256');

INSERT INTO compromised_keys (spki_sha256, reported_at, source, ref, reported_by)
SELECT c.spki_sha256, MIN(r.revoked_at), 'revocation', MIN(c.serial), ''
FROM revocations r JOIN certificates c ON c.serial = r.serial
WHERE r.reason = 1 AND NOT r.ca AND c.spki_sha256 <> ''
GROUP BY c.spki_sha256
ON CONFLICT (spki_sha256) DO NOTHING;
