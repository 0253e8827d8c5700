package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/compliance"
)

// TestComplianceSnapshots: no summary is "not found"; the newest saved is
// the one read back, whole; only the newest 24 are kept.
func TestComplianceSnapshots(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		db := openStore(t, url)
		if _, err := db.LatestComplianceSnapshot(ctx); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("no summary yet: err = %v, want not found", err)
		}
		start := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		rate := 0.5
		for i := range 30 {
			at := start.Add(time.Duration(i) * time.Hour)
			s := &compliance.Snapshot{GeneratedAt: at, Since: at.Add(-compliance.DefaultPeriod), Until: at, WeakKeys: i,
				Summary: compliance.Summary{Counts: compliance.Counts{Total: 10 + i, NonCompliant: i}},
				KPIs:    compliance.KPIs{RenewalSuccessRate: &rate},
				NonCompliant: []*compliance.Row{{Serial: "0a", NotAfter: at, Status: compliance.StatusNonCompliant,
					Findings: []compliance.Finding{{Rule: compliance.RuleExpiry, Severity: compliance.SeverityError, Message: "expired"}}}}}
			if err := db.SaveComplianceSnapshot(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.LatestComplianceSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last := start.Add(29 * time.Hour)
		if !got.GeneratedAt.Equal(last) || got.WeakKeys != 29 || got.Summary.Total != 39 || got.KPIs.RenewalSuccessRate == nil ||
			*got.KPIs.RenewalSuccessRate != 0.5 || len(got.NonCompliant) != 1 || got.NonCompliant[0].Findings[0].Rule != compliance.RuleExpiry {
			t.Errorf("latest = %+v, want the one generated at %s with its rows", got, last)
		}
		var n int
		if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM compliance_snapshots").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 24 {
			t.Errorf("%d summaries kept, want the newest 24", n)
		}
	})
}
