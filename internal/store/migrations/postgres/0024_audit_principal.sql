-- The console's audit page filters by principal, newest first, however
-- long the log is.
CREATE INDEX audit_events_principal ON audit_events (principal, seq);
