-- How many certificates were issued here (source 'issued', not imported)
-- per UTC day of issuance (created_at in whole days since 1970) and CA,
-- kept by a statement-level trigger in the inserting transaction, so the
-- console's "issued per day" reads a few hundred rows however many
-- certificates a day brings. A deleted certificate stays counted: it was
-- issued.
CREATE TABLE issuance_counts (
    day   bigint NOT NULL,
    ca_id text   COLLATE "C" NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (day, ca_id)
);

INSERT INTO issuance_counts (day, ca_id, n)
SELECT floor(extract(epoch FROM created_at) / 86400)::bigint, ca_id, COUNT(*)
FROM certificates WHERE source = 'issued' GROUP BY 1, 2;

CREATE FUNCTION issuance_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO issuance_counts (day, ca_id, n)
    SELECT floor(extract(epoch FROM created_at) / 86400)::bigint, ca_id, COUNT(*)
    FROM new_rows WHERE source = 'issued' GROUP BY 1, 2
    ON CONFLICT (day, ca_id) DO UPDATE SET n = issuance_counts.n + EXCLUDED.n;
    RETURN NULL;
END;
$$;

CREATE TRIGGER issuance_counts_insert AFTER INSERT ON certificates
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION issuance_counts_apply();
