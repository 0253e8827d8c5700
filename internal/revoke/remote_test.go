package revoke_test

import (
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// TestRestartDoesNotServeAnUncoveredCRL: a revocation recorded after the
// stored CRL was built, by a process that stopped before rebuilding it,
// is on the CRL a restarted process serves, even when the bus's first
// catch-up announces the stored CRL before the restarted process built
// one of its own.
func TestRestartDoesNotServeAnUncoveredCRL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaf := e.leaf(t, leafOpts{})
	stored := e.regenerate(t, e.inter.ID)
	e.clk.Advance(time.Minute)
	e.revoke(t, leaf, pki.ReasonKeyCompromise) // the CRL is not rebuilt: the process stops

	svc := e.restart(t)
	if _, err := svc.Presign(ctx, e.inter.ID); err != nil { // the CA's state is loaded, no CRL yet
		t.Fatal(err)
	}
	if err := svc.RemoteCRL(ctx, e.inter.ID); err != nil { // the catch-up at start names the stored CRL
		t.Fatal(err)
	}
	served, err := svc.CRL(ctx, e.inter.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := crlEntries(parseCRL(t, served, e.interCert))[serialOf(leaf)]; !ok {
		t.Errorf("CRL %d served after the restart does not list %s, revoked after CRL %d was built", served.Number, serialOf(leaf), stored.Number)
	}
}
