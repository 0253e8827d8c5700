-- SCEP review (README "SCEP device enrolment"): a request held for
-- approval records the serial of the certificate it renews, so that a
-- certificate whose renewal waits cannot send more RenewalReqs.
ALTER TABLE approval_requests ADD COLUMN replaces text NOT NULL DEFAULT '';
