-- When a claim on ACME work was taken (README "Several replicas"): a
-- replica's start-up sweep takes back only its own claims taken before it
-- started, never those a live replica under the same name took since.
-- NULL: taken before this column existed.
ALTER TABLE acme_challenges ADD COLUMN claimed_at timestamptz;
ALTER TABLE acme_orders ADD COLUMN claimed_at timestamptz;
