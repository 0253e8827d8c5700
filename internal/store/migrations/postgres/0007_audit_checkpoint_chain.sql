-- Audit checkpoints chain to each other: each new checkpoint signs its
-- position in the sequence of checkpoints (counter, from 1) and the digest
-- of the checkpoint before it (prev_hash). Checkpoints written before this
-- migration keep counter 0 and an empty prev_hash: they verify as before
-- and the first chained checkpoint links to the last of them.
ALTER TABLE audit_checkpoints
    ADD COLUMN counter   bigint NOT NULL DEFAULT 0,
    ADD COLUMN prev_hash bytea  NOT NULL DEFAULT '\x'::bytea;
-- Two replicas cannot both sign checkpoint number N.
CREATE UNIQUE INDEX audit_checkpoints_counter ON audit_checkpoints (counter) WHERE counter > 0;

-- Append-only as far as SQL goes, as audit_events is. Anyone who can drop
-- these triggers can delete checkpoints; the chain of checkpoints and the
-- anchor kept outside the database catch that.
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only';
END;
$$;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only();
