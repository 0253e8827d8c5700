-- Single sign-on. A role binding derived from an identity provider's
-- claims names its source ('oidc:PROVIDER'; '' for one an administrator
-- made), so each sign-in replaces that provider's bindings and nothing
-- else. A console sign-in waiting for the provider's answer is kept here
-- by the hash of its state, used once.
ALTER TABLE role_bindings ADD COLUMN source text NOT NULL DEFAULT '';
CREATE INDEX role_bindings_source ON role_bindings (principal_id, source);

CREATE TABLE sso_logins (
    state_hash text        NOT NULL PRIMARY KEY,
    provider   text        NOT NULL,
    nonce      text        NOT NULL,
    verifier   text        NOT NULL,
    next       text        NOT NULL,
    source     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
