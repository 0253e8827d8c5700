package lifecycle_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/profile"
)

// TestServedAlertsPerEndpointAndKind: a served_* alert is raised once
// for an endpoint and kind while the problem lasts (the problem's Key),
// however many certificates with that problem the endpoint serves in
// turn: a server handing out a fresh expired certificate at every scan
// does not raise a critical alert at every scan.
func TestServedAlertsPerEndpointAndKind(t *testing.T) {
	t.Parallel()
	for name, db := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			now := time.Now().UTC().Truncate(time.Second)
			clk := clock.NewFake(now)
			svc, err := lifecycle.New(lifecycle.Config{Clock: clk, Log: slog.New(slog.DiscardHandler)}, db,
				panickyIssuer{}, noRevoker{}, profile.NewCatalog(db, clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			cert := func(fp string) *inventory.Certificate {
				return &inventory.Certificate{Serial: fp, Fingerprint: fp, Subject: "CN=x.test", SANs: []string{"x.test"}, NotAfter: now.Add(-time.Hour),
					Source: inventory.SourceDiscovered}
			}
			expired := func(endpoint, fp, key string) discovery.Problem {
				return discovery.Problem{Kind: discovery.ProblemServedExpired, Endpoint: endpoint, Cert: cert(fp), Key: key, Detail: "expired"}
			}
			for i, tc := range []struct {
				ps   []discovery.Problem
				want int
			}{
				{[]discovery.Problem{expired("10.0.0.1:443", "aa", "aa")}, 1},
				{[]discovery.Problem{expired("10.0.0.1:443", "bb", "aa")}, 0},
				{[]discovery.Problem{expired("10.0.0.1:443", "cc", "aa"), expired("10.0.0.2:443", "cc", "cc")}, 1},
				{[]discovery.Problem{expired("10.0.0.1:443", "dd", "dd")}, 1},
			} {
				n, err := svc.RaiseEndpointProblems(t.Context(), tc.ps)
				if err != nil || n != tc.want {
					t.Errorf("scan %d: %d alerts raised (%v), want %d", i, n, err, tc.want)
				}
			}
		})
	}
}
