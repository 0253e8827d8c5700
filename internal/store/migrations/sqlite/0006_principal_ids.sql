-- Principals by ID, not by name: certificates record their requester's
-- principal ID (the server's own: 'system', an ID no stored principal can
-- have), and audit events the acting principal's ID beside its name.

ALTER TABLE certificates ADD COLUMN requester_id TEXT NOT NULL DEFAULT '';

-- Certificates issued before: a requester that names a stored principal
-- gets its ID. 'system' was the server's own unless a principal took that
-- name; then only the server's current TLS certificate (in settings) is
-- known to be the server's, and the rest are that principal's.
UPDATE certificates SET requester_id = 'system'
WHERE requester = 'system'
  AND (NOT EXISTS (SELECT 1 FROM principals WHERE name = 'system')
       OR serial IN (SELECT CAST(value AS TEXT) FROM settings WHERE name = 'server_tls_serial'));
UPDATE certificates SET requester_id = (SELECT p.id FROM principals p WHERE p.name = certificates.requester)
WHERE requester_id = '' AND EXISTS (SELECT 1 FROM principals p WHERE p.name = certificates.requester);

-- Events appended before this migration have '' (their hash covers no ID).
ALTER TABLE audit_events ADD COLUMN principal_id TEXT NOT NULL DEFAULT '';
