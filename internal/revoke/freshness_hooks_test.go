package revoke_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/revoke"
)

// crlFailingStore fails publishing CRLs while fail is set.
type crlFailingStore struct {
	revoke.Store
	fail atomic.Bool
}

func (s *crlFailingStore) PublishCRL(ctx context.Context, caID string, need func(*revoke.StoredCRL, bool) bool, build revoke.CRLBuild) (*revoke.StoredCRL, bool, error) {
	if s.fail.Load() {
		return nil, false, errors.New("disk full")
	}
	return s.Store.PublishCRL(ctx, caID, need, build)
}

// TestFreshnessRecordsRefreshFailures makes CRL building fail and recover
// and checks that Freshness reports it while it lasts.
func TestFreshnessRecordsRefreshFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	st := &crlFailingStore{Store: e.db}
	svc, err := revoke.New(e.cfg, st, e.kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	svc.MaintainCRLs(ctx)
	svc.MaintainOCSP(ctx)
	for _, f := range svc.Freshness() {
		if f.Failing() {
			t.Fatalf("%s fails after a good start: %+v", f.CAName, f)
		}
	}

	st.fail.Store(true)
	e.clk.Advance(revoke.DefaultCRLLifetime/3 + time.Minute) // the scheduled rebuild is due
	t1 := e.clk.Now()
	svc.MaintainCRLs(ctx)
	for _, f := range svc.Freshness() {
		if !strings.Contains(f.CRLError, "disk full") || !f.CRLErrorSince.Equal(t1) || !strings.HasPrefix(f.LastError, "CRL: ") || f.OCSPError != "" {
			t.Errorf("%s after a failed rebuild: %+v; want the CRL error since %s", f.CAName, f, t1)
		}
	}
	// A CRL requested on demand fails the same way.
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := svc.RegenerateCRL(ctx2, e.inter.ID); err == nil {
		t.Fatal("RegenerateCRL with a cancelled context succeeded")
	}
	if f := svc.Freshness()[0]; !f.CRLErrorSince.Equal(t1) {
		t.Errorf("a cancelled attempt changed the record: %+v", f)
	}

	st.fail.Store(false)
	e.clk.Advance(time.Minute)
	svc.MaintainCRLs(ctx)
	for _, f := range svc.Freshness() {
		if f.Failing() || f.LastError != "" || !f.CRLThisUpdate.Equal(e.clk.Now()) {
			t.Errorf("%s after recovery: %+v; want a fresh CRL and no failure", f.CAName, f)
		}
	}
}
