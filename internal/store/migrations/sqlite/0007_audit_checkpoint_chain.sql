-- Audit checkpoints chain to each other: each new checkpoint signs its
-- position in the sequence of checkpoints (counter, from 1) and the digest
-- of the checkpoint before it (prev_hash). Checkpoints written before this
-- migration keep counter 0 and an empty prev_hash: they verify as before
-- and the first chained checkpoint links to the last of them.
ALTER TABLE audit_checkpoints ADD COLUMN counter   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_checkpoints ADD COLUMN prev_hash BLOB    NOT NULL DEFAULT x'';
-- Two replicas cannot both sign checkpoint number N.
CREATE UNIQUE INDEX audit_checkpoints_counter ON audit_checkpoints (counter) WHERE counter > 0;

-- Append-only as far as SQL goes, as audit_events is. Anyone who can drop
-- these triggers can delete checkpoints; the chain of checkpoints and the
-- anchor kept outside the database catch that.
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
