-- The console's audit page: events by principal and the newest of an
-- action (the last verification), newest first, however long the log is.
CREATE INDEX audit_events_principal ON audit_events (principal, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
