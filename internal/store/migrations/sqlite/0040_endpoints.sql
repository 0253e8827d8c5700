-- Endpoints found by network scans (discovery.Endpoint as JSON in body,
-- with the columns listings filter on), their history, and which
-- certificate each served when (README "Discovery and TLS scanning").
-- status is the served certificate's reconciliation ('' when none was
-- served); gone is 1 once the endpoint disappeared. Events older than
-- scan.history are pruned at each scan, and gone endpoints not scanned
-- since then with them.
CREATE TABLE endpoints (
    address      TEXT    NOT NULL PRIMARY KEY,
    encryption   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    grade        TEXT    NOT NULL,
    gone         INTEGER NOT NULL,
    last_scanned INTEGER NOT NULL,
    body         TEXT    NOT NULL
) STRICT;
CREATE INDEX endpoints_fingerprint ON endpoints (fingerprint);

CREATE TABLE endpoint_events (
    id      INTEGER NOT NULL PRIMARY KEY,
    address TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    body    TEXT    NOT NULL
) STRICT;
CREATE INDEX endpoint_events_address ON endpoint_events (address, at, id);
CREATE INDEX endpoint_events_kind ON endpoint_events (kind, at, id);
CREATE INDEX endpoint_events_at ON endpoint_events (at);

-- Where each certificate was served: one row per certificate and
-- endpoint, first and last seen there. A discovered certificate's
-- endpoint is found here.
CREATE TABLE served_certificates (
    fingerprint TEXT    NOT NULL,
    endpoint    TEXT    NOT NULL,
    serial      TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, endpoint)
) STRICT;
CREATE INDEX served_certificates_last ON served_certificates (last_seen);
