-- PostgreSQL's 0025 gives its planner statistics over certificate_names'
-- kind and value together; SQLite's listing tests a common tag row by row
-- instead (store.steerIndexes), so there is nothing to do here.
SELECT 1;
