-- The console's inventory sorts by any column it shows and pages by
-- keyset, so each order's key has an index ending in the serial: a page
-- is one index range however deep it starts. Status and source are
-- indexed as expressions, which their equality tests elsewhere (95% of
-- rows "valid") never pick over a narrower index. The name order's key is the
-- first SAN as written, else the subject (store dialect firstName).
DROP INDEX certificates_not_after;
CREATE INDEX certificates_not_after ON certificates (not_after, serial);
CREATE INDEX certificates_not_before ON certificates (not_before, serial);
CREATE INDEX certificates_name ON certificates (coalesce(json_extract(sans, '$[0]'), subject), serial);
CREATE INDEX certificates_status ON certificates ((status || ''), serial);
CREATE INDEX certificates_source ON certificates ((source || ''), serial);
-- Searched by exactly.
CREATE INDEX certificates_owner ON certificates (owner, serial);
CREATE INDEX certificates_requester ON certificates (requester, serial);
CREATE INDEX certificates_fingerprint ON certificates (fingerprint);

-- Saved views of the console's inventory: a named filter (the page's
-- query string, checked before it is saved) that only its principal sees.
CREATE TABLE console_views (
    id           TEXT    NOT NULL PRIMARY KEY,
    principal_id TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (principal_id, name)
) STRICT, WITHOUT ROWID;
