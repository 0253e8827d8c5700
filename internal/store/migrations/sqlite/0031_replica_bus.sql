-- Each CA's latest signed CRL, served after a restart instead of signing a
-- new one (README "Several replicas"; on PostgreSQL every replica serves
-- it). revocations is how many revocations the CA had when it was built
-- (revocations are never deleted, so a larger count means a revocation
-- the CRL may not list).
CREATE TABLE crls (
    ca_id       TEXT    NOT NULL PRIMARY KEY,
    number      INTEGER NOT NULL,
    der         BLOB    NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    revocations INTEGER NOT NULL
) STRICT;
