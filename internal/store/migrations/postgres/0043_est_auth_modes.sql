-- EST security review (README "EST device enrolment"): auth "both" used to
-- mean either credential; it is now called "any", and "both" requires an
-- IDevID and a one-time secret. Existing provisioners keep their behaviour.
-- allowed_identities is the optional identity allow-list, one identity a
-- line, sorted ('' for none).
UPDATE est_provisioners SET auth = 'any' WHERE auth = 'both';
ALTER TABLE est_provisioners ADD COLUMN allowed_identities TEXT NOT NULL DEFAULT '';
-- A revoked secret (certwright est secret revoke) authenticates nothing.
ALTER TABLE est_secrets ADD COLUMN revoked_at timestamptz;
ALTER TABLE est_secrets ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
