-- ACME across replicas (README "Several replicas"): a challenge in
-- processing and an order in processing are claimed by one replica until
-- claimed_until. claimed_by names the replica, claim is a random token
-- per claim (the conditions on recording a result compare it), attempts
-- counts the claims of a challenge, and source is the address key that
-- answered it (the queue's per-source limit, for a replica that takes
-- the challenge over).
ALTER TABLE acme_challenges ADD COLUMN claimed_by text NOT NULL DEFAULT '';
ALTER TABLE acme_challenges ADD COLUMN claim text NOT NULL DEFAULT '';
ALTER TABLE acme_challenges ADD COLUMN claimed_until timestamptz;
ALTER TABLE acme_challenges ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE acme_challenges ADD COLUMN source text NOT NULL DEFAULT '';
ALTER TABLE acme_orders ADD COLUMN claimed_by text NOT NULL DEFAULT '';
ALTER TABLE acme_orders ADD COLUMN claim text NOT NULL DEFAULT '';
ALTER TABLE acme_orders ADD COLUMN claimed_until timestamptz;
-- Whatever was left processing before claims existed is taken up (or
-- returned to ready) by the first sweep.
UPDATE acme_challenges SET claimed_until = 'epoch' WHERE status = 'processing';
UPDATE acme_orders SET claimed_until = 'epoch' WHERE status = 'processing';
-- The sweeps look for expired claims among the few rows processing.
CREATE INDEX acme_challenges_claims ON acme_challenges (claimed_until) WHERE status = 'processing';
CREATE INDEX acme_orders_claims ON acme_orders (claimed_until) WHERE status = 'processing';
