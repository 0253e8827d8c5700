-- SCEP security review (README "SCEP device enrolment"): a provisioner
-- refuses a PKIOperation encrypted with DES or 3DES or signed with a SHA-1
-- or MD5 digest unless the operator allowed legacy crypto on it (scep
-- update NAME --allow-legacy-crypto), for devices that cannot do better.
ALTER TABLE scep_provisioners ADD COLUMN allow_legacy_crypto INTEGER NOT NULL DEFAULT 0;
