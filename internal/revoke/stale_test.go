package revoke

import (
	"testing"
	"time"
)

// TestFreshnessStale: revocation data is stale when its latest refresh
// failed, or when the due refresh is more than the grace late; not before
// the first refresh is due, and not within the grace.
func TestFreshnessStale(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name           string
		f              Freshness
		wantCRL, wantO bool
	}{
		{"nothing yet", Freshness{}, false, false},
		{"due within the grace", Freshness{CRLRefreshDue: now.Add(-4 * time.Minute), OCSPRefreshDue: now.Add(-4 * time.Minute)}, false, false},
		{"CRL late", Freshness{CRLRefreshDue: now.Add(-6 * time.Minute), OCSPRefreshDue: now.Add(time.Hour)}, true, false},
		{"OCSP late", Freshness{CRLRefreshDue: now.Add(time.Hour), OCSPRefreshDue: now.Add(-6 * time.Minute)}, false, true},
		{"CRL failing", Freshness{CRLError: "sign: token gone", CRLRefreshDue: now.Add(time.Hour)}, true, false},
		{"OCSP failing", Freshness{OCSPError: "sign: token gone"}, false, true},
	} {
		crl, ocsp := c.f.Stale(now, StaleGrace)
		if crl != c.wantCRL || ocsp != c.wantO {
			t.Errorf("%s: Stale = %v, %v; want %v, %v", c.name, crl, ocsp, c.wantCRL, c.wantO)
		}
	}
}
