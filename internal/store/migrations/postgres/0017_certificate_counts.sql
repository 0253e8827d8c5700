-- How many certificates there are per CA, profile, status, renewal and day
-- of expiry (UTC days since 1970), kept by a trigger on certificates in the
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

CREATE FUNCTION certificate_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR TG_OP = 'DELETE' THEN
        UPDATE certificate_counts SET n = n - 1
        WHERE ca_id = OLD.ca_id AND profile = OLD.profile AND status = OLD.status
          AND renewed = (OLD.renewed_by <> '') AND expiry_day = floor(extract(epoch FROM OLD.not_after) / 86400)::bigint;
    END IF;
    IF TG_OP = 'UPDATE' OR TG_OP = 'INSERT' THEN
        INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
        VALUES (NEW.ca_id, NEW.profile, NEW.status, NEW.renewed_by <> '', floor(extract(epoch FROM NEW.not_after) / 86400)::bigint, 1)
        ON CONFLICT (ca_id, profile, status, renewed, expiry_day) DO UPDATE SET n = certificate_counts.n + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER certificate_counts_maintain AFTER INSERT OR DELETE OR UPDATE OF ca_id, profile, status, renewed_by, not_after
ON certificates FOR EACH ROW EXECUTE FUNCTION certificate_counts_apply();
