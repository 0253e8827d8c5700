-- Compliance summaries (compliance.Snapshot as JSON: counts, KPIs, worst
-- offenders, the first non-compliant certificates), built by the
-- compliance-summary job so the console shows the report's figures at
-- once at any inventory size. The newest few are kept (store.keepSnapshots).
CREATE TABLE compliance_snapshots (
    generated_at timestamptz NOT NULL PRIMARY KEY,
    body         text        NOT NULL
);
