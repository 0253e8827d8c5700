-- mTLS credentials: which principal a client certificate authenticates as.
-- A certificate whose SAN is a registered identity is an API credential
-- only if it has a row here naming that identity's principal. The issuance
-- path writes the row when the certificate can authenticate clients and was
-- issued to that principal itself (or by an administrator with
-- principal:manage over it while the identity was registered); ACME never
-- writes one. A SAN alone proves nothing: any requester can put any name
-- its scope allows into a CSR.
CREATE TABLE client_credentials (
    serial       text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES certificates (serial),
    principal_id text NOT NULL
);

-- Certificates issued before this migration keep working when the rule
-- above held at issuance: the requester was the identity's principal
-- itself, or an unscoped administrator who issued it after the identity was
-- registered. A certificate whose SANs name several principals, the
-- server's own, imported and ACME certificates get no row.
INSERT INTO client_credentials (serial, principal_id)
SELECT c.serial, MIN(i.principal_id)
FROM certificates c
JOIN certificate_names n ON n.serial = c.serial AND n.kind = 'san'
JOIN principal_identities i ON lower(i.value) = n.value
JOIN principals p ON p.id = i.principal_id
WHERE c.source = 'issued' AND c.requester <> 'system'
  AND (c.requester = p.name OR (i.created_at <= c.created_at AND EXISTS (
        SELECT 1 FROM principals r JOIN role_bindings b ON b.principal_id = r.id
        WHERE r.name = c.requester AND b.role = 'admin'
          AND b.cas = '[]' AND b.profiles = '[]' AND b.names = '[]')))
GROUP BY c.serial
HAVING COUNT(DISTINCT i.principal_id) = 1;
