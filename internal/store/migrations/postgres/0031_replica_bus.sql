-- Several replicas on one database (README "Several replicas").
--
-- recorded_xid is the ID of the transaction that recorded a revocation.
-- The notification bus's catch-up asks for the revocations committed since
-- its last look by comparing it with that look's snapshot
-- (pg_visible_in_snapshot): exact whatever order transactions commit in,
-- where a sequence or a timestamp could be passed by a transaction that
-- commits late.
ALTER TABLE revocations ADD COLUMN recorded_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX revocations_recorded ON revocations (recorded_xid);

-- Each CA's latest signed CRL. Every replica serves this one; only the
-- replica holding the CA's CRL lock builds the next (store.PublishCRL).
-- revocations is how many revocations the CA had when it was built
-- (revocations are never deleted, so a larger count means a revocation
-- the CRL may not list).
CREATE TABLE crls (
    ca_id       text        NOT NULL PRIMARY KEY,
    number      bigint      NOT NULL,
    der         bytea       NOT NULL,
    this_update timestamptz NOT NULL,
    next_update timestamptz NOT NULL,
    entries     integer     NOT NULL,
    revocations bigint      NOT NULL
);
