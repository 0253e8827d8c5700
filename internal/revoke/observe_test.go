package revoke_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// observed is one ObserveRevoke call.
type observed struct {
	reason  string
	revoked int
	elapsed time.Duration
	err     error
}

// recorder is a revoke.Observer that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls []observed
}

func (r *recorder) ObserveRevoke(reason string, revoked int, elapsed time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, observed{reason, revoked, elapsed, err})
}

// take returns the calls since the last take.
func (r *recorder) take() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func TestObserverHearsEveryRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recorder{}
	e := newEnv(t, func(c *revoke.Config) { c.Observer = rec })
	leaf := e.leaf(t, leafOpts{})
	bulk := e.leaves(t, 3, leafOpts{profile: "internal_service"})

	want := func(step string, wantCalls ...observed) {
		t.Helper()
		got := rec.take()
		if len(got) != len(wantCalls) {
			t.Fatalf("%s: %d observer calls %+v, want %d", step, len(got), got, len(wantCalls))
		}
		for i, g := range got {
			w := wantCalls[i]
			if g.reason != w.reason || g.revoked != w.revoked || (g.err == nil) != (w.err == nil) || (w.err != nil && !errors.Is(g.err, w.err)) {
				t.Errorf("%s: call %d = %+v, want reason %q, revoked %d, err %v", step, i, g, w.reason, w.revoked, w.err)
			}
			if g.elapsed <= 0 {
				t.Errorf("%s: call %d elapsed %v, want a positive duration", step, i, g.elapsed)
			}
		}
	}

	req := revoke.Request{Principal: admin, Serial: serialOf(leaf), Reason: pki.ReasonKeyCompromise}
	if _, _, err := e.svc.Revoke(ctx, req); err != nil {
		t.Fatal(err)
	}
	want("first revocation", observed{reason: "key_compromise", revoked: 1})
	if _, created, err := e.svc.Revoke(ctx, req); err != nil || created {
		t.Fatalf("second Revoke = created %v, %v", created, err)
	}
	want("repeated revocation", observed{reason: "key_compromise", revoked: 0})

	_, _, err := e.svc.Revoke(ctx, revoke.Request{Principal: admin, Serial: serialOf(leaf), Reason: pki.Reason(6)})
	want("unsupported reason", observed{reason: revoke.ReasonInvalid, err: revoke.ErrInvalid})
	if !errors.Is(err, revoke.ErrInvalid) {
		t.Errorf("Revoke with reason 6 = %v, want ErrInvalid", err)
	}

	sel := inventory.Selector{Profile: "internal_service"}
	dry, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel, Reason: pki.ReasonSuperseded, DryRun: true})
	if err != nil || len(dry) != len(bulk) {
		t.Fatalf("dry run = %d records, %v", len(dry), err)
	}
	want("dry run")
	recs, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel, Reason: pki.ReasonSuperseded})
	if err != nil || len(recs) != len(bulk) {
		t.Fatalf("RevokeMatching = %d records, %v", len(recs), err)
	}
	want("bulk revocation", observed{reason: "superseded", revoked: len(bulk)})
	_, err = e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel, Reason: pki.ReasonSuperseded})
	want("bulk revocation matching nothing", observed{reason: "superseded", err: revoke.ErrNoMatch})
	if !errors.Is(err, revoke.ErrNoMatch) {
		t.Errorf("second RevokeMatching = %v, want ErrNoMatch", err)
	}

	if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "issuing"}); err != nil {
		t.Fatal(err)
	}
	want("CA revocation (reason defaults to ca_compromise)", observed{reason: "ca_compromise", revoked: 1})
	_, _, err = e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "root"})
	want("root CA refused", observed{reason: "ca_compromise", err: revoke.ErrInvalid})
}

// TestNoObserver checks that a service without an observer revokes as
// before (the observer is optional).
func TestNoObserver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	leaf := e.leaf(t, leafOpts{})
	rec := e.revoke(t, leaf, pki.ReasonCessationOfOperation)
	if rec.Reason != pki.ReasonCessationOfOperation {
		t.Errorf("revocation reason %v, want cessation_of_operation", rec.Reason)
	}
}
