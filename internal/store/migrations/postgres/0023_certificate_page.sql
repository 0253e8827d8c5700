-- The console's certificate page: one certificate's audit events and
-- alerts, newest first, read through an index however long the audit log
-- and the alert history grow.

-- Events whose target is a certificate's serial (and any other target),
-- newest first: a range of this index, never a scan of the log.
CREATE INDEX audit_events_target ON audit_events (target, seq);

-- The certificate an alert concerns: its payload's certificate.serial, ''
-- when it names none (revocation data, test alerts). An expiry alert's
-- subject is the serial, but a deploy failure's is
-- deploy:<principal>/<serial>: this column finds both.
ALTER TABLE alerts ADD COLUMN serial text NOT NULL DEFAULT '';
UPDATE alerts SET serial = COALESCE(CAST(payload AS jsonb) -> 'certificate' ->> 'serial', '');
CREATE INDEX alerts_serial ON alerts (serial, created_at, id) WHERE serial <> '';
