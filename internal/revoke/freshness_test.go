package revoke_test

import (
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

func TestFreshness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	if got := e.svc.Freshness(); len(got) != 0 {
		t.Fatalf("Freshness before any CA is loaded = %+v, want none", got)
	}

	t0 := e.clk.Now()
	e.svc.MaintainCRLs(ctx)
	e.svc.MaintainOCSP(ctx)
	got := e.svc.Freshness()
	if len(got) != 2 || got[0].CAName != "issuing" || got[1].CAName != "root" {
		t.Fatalf("Freshness = %+v, want the issuing and root CAs, by name", got)
	}
	for i, id := range []string{e.inter.ID, e.root.ID} {
		f := got[i]
		if f.CAID != id {
			t.Errorf("%s: CAID %q, want %q", f.CAName, f.CAID, id)
		}
		crl, err := e.svc.CRL(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if f.CRLNumber != crl.Number || !f.CRLThisUpdate.Equal(crl.ThisUpdate) || !f.CRLNextUpdate.Equal(crl.NextUpdate) || f.CRLEntries != crl.Entries {
			t.Errorf("%s: CRL %d %s..%s (%d entries), want the served CRL %d %s..%s (%d)", f.CAName,
				f.CRLNumber, f.CRLThisUpdate, f.CRLNextUpdate, f.CRLEntries, crl.Number, crl.ThisUpdate, crl.NextUpdate, crl.Entries)
		}
		if want := crl.ThisUpdate.Add(revoke.DefaultCRLLifetime / 3); !f.CRLRefreshDue.Equal(want) {
			t.Errorf("%s: CRLRefreshDue %s, want %s", f.CAName, f.CRLRefreshDue, want)
		}
		r, err := e.db.GetOCSPResponder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !f.OCSPResponderNotAfter.Equal(r.NotAfter) {
			t.Errorf("%s: OCSPResponderNotAfter %s, want the stored responder's %s", f.CAName, f.OCSPResponderNotAfter, r.NotAfter)
		}
		if !f.OCSPLastPresign.Equal(t0) || !f.OCSPRefreshDue.Equal(t0.Add(revoke.DefaultOCSPLifetime/4)) ||
			!f.OCSPNextUpdate.Equal(t0.Add(revoke.DefaultOCSPLifetime*3/4)) {
			t.Errorf("%s: OCSP pass %s, due %s, next update %s; want %s, +6h, +18h", f.CAName,
				f.OCSPLastPresign, f.OCSPRefreshDue, f.OCSPNextUpdate, t0)
		}
		if f.Failing() || f.LastError != "" || f.CRLError != "" || f.OCSPError != "" {
			t.Errorf("%s: reports a failure after successful refreshes: %+v", f.CAName, f)
		}
	}

	// A revocation rebuilds the issuing CA's CRL; Freshness follows.
	e.clk.Advance(time.Hour)
	e.revoke(t, e.leaf(t, leafOpts{}), pki.ReasonSuperseded)
	e.svc.MaintainCRLs(ctx)
	f := e.svc.Freshness()[0]
	if f.CRLNumber != got[0].CRLNumber+1 || !f.CRLThisUpdate.Equal(e.clk.Now()) || f.CRLEntries != 1 {
		t.Errorf("after a revocation: CRL %d from %s with %d entries; want %d from %s with 1",
			f.CRLNumber, f.CRLThisUpdate, f.CRLEntries, got[0].CRLNumber+1, e.clk.Now())
	}
}
