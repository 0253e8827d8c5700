package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestWarnSCEPRA checks that scep show warns when the RA certificate
// expires within 30 days or has expired, and only then.
func TestWarnSCEPRA(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, tc := range []struct {
		notAfter *time.Time
		want     string
	}{
		{nil, ""},
		{at(31 * 24 * time.Hour), ""},
		{at(29 * 24 * time.Hour), "expires"},
		{at(-time.Hour), "expired"},
	} {
		var b strings.Builder
		warnSCEPRA(&b, apitypes.SCEPProvisioner{Name: "mdm", RANotAfter: tc.notAfter}, now)
		got := b.String()
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) || (got != "" && !strings.Contains(got, "certwright scep rotate-ra mdm")) {
			t.Errorf("not after %v: %q, want a warning with %q", tc.notAfter, got, tc.want)
		}
	}
}
