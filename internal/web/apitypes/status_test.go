package apitypes_test

import (
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestStatusMessage: a client's one-line message says the label once, also
// when the detail repeats it, and falls back to the status alone for a
// body that is not an API error.
func TestStatusMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"error":"CA cannot issue","detail":"CA cannot issue: CA issuing is disabled"}`, "409 Conflict: CA cannot issue: CA issuing is disabled"},
		{`{"error":"conflict","detail":"certificate serial \"01\" exists"}`, `409 Conflict: conflict: certificate serial "01" exists`},
		{`{"error":"conflict"}`, "409 Conflict: conflict"},
		{`not json`, "409 Conflict"},
	} {
		if got := apitypes.StatusMessage(409, []byte(tc.body)); got != tc.want {
			t.Errorf("StatusMessage(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
