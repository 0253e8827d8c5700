-- How many certificates there are per CA, profile, status, renewal and day
-- of expiry (UTC days since 1970), kept by triggers on certificates in the
-- same transaction as every insert, status, renewal or expiry change and
-- delete, so that the console's overview counts a million certificates by
-- summing a few thousand rows instead of reading them all.
CREATE TABLE certificate_counts (
    ca_id      text    COLLATE "C" NOT NULL,
    profile    text    COLLATE "C" NOT NULL,
    status     text    COLLATE "C" NOT NULL,
    renewed    boolean NOT NULL, -- renewed_by is set
    expiry_day bigint  NOT NULL, -- not_after in whole UTC days since 1970
    n          bigint  NOT NULL,
    PRIMARY KEY (ca_id, profile, status, renewed, expiry_day)
);

INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
SELECT ca_id, profile, status, renewed_by <> '', floor(extract(epoch FROM not_after) / 86400)::bigint, COUNT(*)
FROM certificates GROUP BY 1, 2, 3, 4, 5;

-- Statement-level triggers with transition tables: one grouped upsert per
-- statement, so a batch of certificates written by one INSERT costs one
-- statement here, not one per row. An UPDATE applies only the groups whose
-- count changes (an update of other columns changes none).
CREATE FUNCTION certificate_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
        SELECT ca_id, profile, status, renewed_by <> '', floor(extract(epoch FROM not_after) / 86400)::bigint, COUNT(*)
        FROM new_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (ca_id, profile, status, renewed, expiry_day) DO UPDATE SET n = certificate_counts.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE certificate_counts c SET n = c.n - d.n
        FROM (SELECT ca_id, profile, status, renewed_by <> '' AS renewed,
                     floor(extract(epoch FROM not_after) / 86400)::bigint AS expiry_day, COUNT(*) AS n
              FROM old_rows GROUP BY 1, 2, 3, 4, 5) d
        WHERE c.ca_id = d.ca_id AND c.profile = d.profile AND c.status = d.status
          AND c.renewed = d.renewed AND c.expiry_day = d.expiry_day;
    ELSE
        INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
        SELECT ca_id, profile, status, renewed, expiry_day, SUM(n) FROM (
            SELECT ca_id, profile, status, renewed_by <> '' AS renewed,
                   floor(extract(epoch FROM not_after) / 86400)::bigint AS expiry_day, -1 AS n FROM old_rows
            UNION ALL
            SELECT ca_id, profile, status, renewed_by <> '',
                   floor(extract(epoch FROM not_after) / 86400)::bigint, 1 FROM new_rows
        ) d GROUP BY 1, 2, 3, 4, 5 HAVING SUM(n) <> 0
        ON CONFLICT (ca_id, profile, status, renewed, expiry_day) DO UPDATE SET n = certificate_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER certificate_counts_insert AFTER INSERT ON certificates
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION certificate_counts_apply();
CREATE TRIGGER certificate_counts_update AFTER UPDATE ON certificates
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION certificate_counts_apply();
CREATE TRIGGER certificate_counts_delete AFTER DELETE ON certificates
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION certificate_counts_apply();
