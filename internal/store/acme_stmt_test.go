package store

import "testing"

// TestGetAuthzOneIDPrepared: GetAuthorizations builds, for one ID, exactly
// the text of sqlGetAuthz, so the statement prepared for it is the one used.
func TestGetAuthzOneIDPrepared(t *testing.T) {
	t.Parallel()
	if got := authzSelect + ` WHERE a.id IN (` + params(1) + `)` + authzOrder; got != sqlGetAuthz {
		t.Fatalf("one-ID query\n%s\ndiffers from sqlGetAuthz\n%s", got, sqlGetAuthz)
	}
}
