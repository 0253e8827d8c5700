-- A person certificate ends with the sign-in that minted it. Its
-- client_credentials row names the API token (a sign-in through an
-- identity provider) that asked for it; '' for every other credential.
-- Authentication refuses such a certificate once that token is revoked,
-- and revoking the token revokes the certificates it names.
ALTER TABLE client_credentials ADD COLUMN token_id text NOT NULL DEFAULT '';
CREATE INDEX client_credentials_token ON client_credentials (token_id) WHERE token_id <> '';
