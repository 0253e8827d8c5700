-- Short-lived client certificates for people (single sign-on). A token
-- minted by a sign-in through an identity provider says which ('oidc:NAME'
-- in via; '' for a token an administrator created), so that only such a
-- token may ask for a person certificate. An identity that a provider's
-- sign-in added (the person's verified e-mail address) names that
-- provider in source, so that the next sign-in through it replaces it
-- and nothing an administrator mapped ('').
ALTER TABLE api_tokens ADD COLUMN via text NOT NULL DEFAULT '';
ALTER TABLE principal_identities ADD COLUMN source text NOT NULL DEFAULT '';
CREATE INDEX principal_identities_source ON principal_identities (principal_id, source);
