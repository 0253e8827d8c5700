-- ACME provisioners keep only the common name of a CSR's subject unless
-- the operator allowed subject fields (O, OU, C, ...) on the provisioner:
-- ACME validates names, nothing else.
ALTER TABLE acme_provisioners ADD COLUMN allow_subject_fields INTEGER NOT NULL DEFAULT 0;
