package revoke

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
)

// TestFreshnessFailures checks how refresh failures are kept: the first
// failure of a streak sets "since", the latest sets the error and its
// time, a success clears its own kind only, and a cancelled attempt is
// not a failure.
func TestFreshnessFailures(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	st := &caState{id: "ca-1", name: "issuing", cache: map[string]*entry{}}
	s := &Service{
		cfg: Config{Clock: clk, CRLLifetime: DefaultCRLLifetime, OCSPLifetime: DefaultOCSPLifetime},
		cas: map[string]*caState{st.id: st},
	}
	ctx := context.Background()
	one := func() Freshness {
		t.Helper()
		fs := s.Freshness()
		if len(fs) != 1 {
			t.Fatalf("Freshness = %+v, want one CA", fs)
		}
		return fs[0]
	}
	if f := one(); f.Failing() || f.LastError != "" {
		t.Fatalf("fresh service reports a failure: %+v", f)
	}

	s.noteCRL(ctx, st, errors.New("disk full"))
	clk.Advance(time.Minute)
	s.noteCRL(ctx, st, errors.New("disk still full"))
	f := one()
	if !f.Failing() || f.CRLError != "disk still full" || !f.CRLErrorSince.Equal(t0) ||
		f.LastError != "CRL: disk still full" || !f.LastErrorAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after two CRL failures: %+v; want the latest error, since the first, at the latest", f)
	}

	clk.Advance(time.Minute)
	s.noteResponder(ctx, st, errors.New("HSM unreachable"))
	f = one()
	if f.OCSPError != "HSM unreachable" || !f.OCSPErrorSince.Equal(t0.Add(2*time.Minute)) ||
		f.LastError != "OCSP: HSM unreachable" || !f.LastErrorAt.Equal(t0.Add(2*time.Minute)) || f.CRLError == "" {
		t.Errorf("after a responder failure: %+v; want both failures, the OCSP one last", f)
	}
	clk.Advance(time.Minute)
	s.notePresign(ctx, st, errors.New("store down"))
	f = one()
	if f.OCSPError != "store down" || !f.OCSPErrorSince.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after a pre-signing failure: %+v; want its error, failing since the responder's", f)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s.noteCRL(cancelled, st, nil)
	s.notePresign(cancelled, st, context.Canceled)
	if g := one(); g.CRLError != f.CRLError || g.OCSPError != f.OCSPError || !g.LastErrorAt.Equal(f.LastErrorAt) {
		t.Errorf("an attempt cut short by its context changed the record: %+v, was %+v", g, f)
	}

	// A working responder clears only its own failure: the pass still fails.
	s.noteResponder(ctx, st, nil)
	f = one()
	if f.OCSPError != "store down" || !f.OCSPErrorSince.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("after a responder success: %+v; want the pass's failure alone", f)
	}
	s.notePresign(ctx, st, nil)
	f = one()
	if f.OCSPError != "" || !f.OCSPErrorSince.IsZero() || f.CRLError == "" || f.LastError != "CRL: disk still full" {
		t.Errorf("after an OCSP success: %+v; want only the CRL failure left", f)
	}
	s.noteCRL(ctx, st, nil)
	if f = one(); f.Failing() || f.LastError != "" || !f.LastErrorAt.IsZero() {
		t.Errorf("after a CRL success: %+v; want no failure", f)
	}

	clk.Advance(time.Minute)
	s.noteCRL(ctx, st, errors.New("again"))
	if f = one(); !f.CRLErrorSince.Equal(clk.Now()) {
		t.Errorf("a new streak started at %s, want %s", f.CRLErrorSince, clk.Now())
	}
}
