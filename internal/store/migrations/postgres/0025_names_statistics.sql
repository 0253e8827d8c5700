-- certificate_names holds names and tags under one (kind, value) key. The
-- planner multiplies the frequency of kind = 'tag' by that of a value as
-- if they were unrelated, and so guessed 12,000 certificates tagged
-- "acme" among a million where there were 100,000: the inventory filtered
-- to them then listed every one and sorted them (1.2 s) instead of
-- walking its order's index. Statistics over both columns together give
-- it the real figure.
CREATE STATISTICS certificate_names_kind_value (mcv, ndistinct) ON kind, value FROM certificate_names;
ANALYZE certificate_names;
