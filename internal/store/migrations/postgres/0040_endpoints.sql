-- Endpoints found by network scans (discovery.Endpoint as JSON in body,
-- with the columns listings filter on), their history, and which
-- certificate each served when (README "Discovery and TLS scanning").
-- status is the served certificate's reconciliation ('' when none was
-- served); gone is 1 once the endpoint disappeared. Events older than
-- scan.history are pruned at each scan, and gone endpoints not scanned
-- since then with them.
CREATE TABLE endpoints (
    address      text        NOT NULL PRIMARY KEY,
    encryption   text        NOT NULL,
    status       text        NOT NULL,
    fingerprint  text        NOT NULL,
    grade        text        NOT NULL,
    gone         smallint    NOT NULL,
    last_scanned timestamptz NOT NULL,
    body         text        NOT NULL
);
CREATE INDEX endpoints_fingerprint ON endpoints (fingerprint);

CREATE TABLE endpoint_events (
    id      bigserial   PRIMARY KEY,
    address text        NOT NULL,
    kind    text        NOT NULL,
    at      timestamptz NOT NULL,
    body    text        NOT NULL
);
CREATE INDEX endpoint_events_address ON endpoint_events (address, at, id);
CREATE INDEX endpoint_events_kind ON endpoint_events (kind, at, id);
CREATE INDEX endpoint_events_at ON endpoint_events (at);

-- Where each certificate was served: one row per certificate and
-- endpoint, first and last seen there. A discovered certificate's
-- endpoint is found here.
CREATE TABLE served_certificates (
    fingerprint text        NOT NULL,
    endpoint    text        NOT NULL,
    serial      text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (fingerprint, endpoint)
);
CREATE INDEX served_certificates_last ON served_certificates (last_seen);
