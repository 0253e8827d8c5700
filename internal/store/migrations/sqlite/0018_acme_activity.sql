-- The console's view of an ACME provisioner: its newest accounts, orders
-- and failed validations, each read from the newest row of an index and
-- stopped at a LIMIT instead of sorting all the provisioner's rows.
CREATE INDEX acme_accounts_recent ON acme_accounts (provisioner_id, created_at, id);
CREATE INDEX acme_orders_recent ON acme_orders (provisioner_id, created_at, id);
CREATE INDEX acme_authorizations_recent ON acme_authorizations (provisioner_id, status, created_at, id);
