-- ACME provisioner lifecycle: an operator may disable a provisioner (it
-- takes no new accounts, orders, challenges or finalizations until enabled
-- again) and revoke an external account binding key (it binds no account,
-- and the account it bound is deactivated).
ALTER TABLE acme_provisioners ADD COLUMN disabled_at INTEGER;          -- NULL while enabled
ALTER TABLE acme_provisioners ADD COLUMN disabled_by TEXT NOT NULL DEFAULT '';
ALTER TABLE acme_eab_keys ADD COLUMN revoked_at INTEGER;               -- NULL until revoked
ALTER TABLE acme_eab_keys ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
-- Deleting a provisioner deactivates its accounts and ends its open orders.
CREATE INDEX acme_accounts_provisioner ON acme_accounts (provisioner_id, status);
CREATE INDEX acme_orders_provisioner ON acme_orders (provisioner_id, status);
