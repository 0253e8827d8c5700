-- How many certificates were issued here (source 'issued', not imported)
-- per UTC day of issuance (created_at in whole days since 1970) and CA,
-- kept in the inserting transaction by the store (store.countInserted),
-- so the console's "issued per day" reads a few hundred rows however many
-- certificates a day brings. A deleted certificate stays counted: it was
-- issued.
CREATE TABLE issuance_counts (
    day   INTEGER NOT NULL,
    ca_id TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (day, ca_id)
) STRICT, WITHOUT ROWID;

INSERT INTO issuance_counts (day, ca_id, n)
SELECT (created_at - ((created_at % 86400000000) + 86400000000) % 86400000000) / 86400000000, ca_id, COUNT(*)
FROM certificates WHERE source = 'issued' GROUP BY 1, 2;
