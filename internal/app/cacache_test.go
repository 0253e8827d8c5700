package app

import (
	"context"
	"crypto/elliptic"
	"errors"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// tCAApp opens an initialised instance in-process on a fake clock.
func tCAApp(t *testing.T, b tBackend) (*App, *clock.Fake) {
	t.Helper()
	cfg := tConfig(t, b.dbURL(t))
	clk := clock.NewFake(time.Now().UTC())
	tInit(t, cfg, clk)
	a, err := Open(context.Background(), cfg, tLogger(), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, clk
}

// tIssueOn issues a leaf from the CA named caName through the issuance path.
func tIssueOn(t *testing.T, a *App, caName string) error {
	t.Helper()
	csr, err := pki.ParseCSR(tCSR(t, tECKey(t, elliptic.P256()), "cache.example.internal"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.issuer.Issue(context.Background(), issue.Request{Principal: authz.System(), CA: caName, Profile: "web_server", CSR: csr})
	return err
}

// TestCAChangeThroughServiceAppliesAtOnce: the issuance path serves CA
// records from memory, yet a CA disabled, enabled, revoked or deleted
// through this process is refused (or issues again) on the very next
// request, with the clock standing still.
func TestCAChangeThroughServiceAppliesAtOnce(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			a, _ := tCAApp(t, b)
			ctx := context.Background()
			p := authz.System()
			if err := tIssueOn(t, a, "issuing"); err != nil {
				t.Fatalf("before: %v", err)
			}
			if _, err := a.cas.Disable(ctx, p, "issuing"); err != nil {
				t.Fatal(err)
			}
			if err := tIssueOn(t, a, "issuing"); !errors.Is(err, ca.ErrNotIssuing) {
				t.Fatalf("after disable: %v, want ErrNotIssuing", err)
			}
			if _, err := a.cas.Enable(ctx, p, "issuing"); err != nil {
				t.Fatal(err)
			}
			if err := tIssueOn(t, a, "issuing"); err != nil {
				t.Fatalf("after enable: %v", err)
			}
			if _, _, err := a.revoker.RevokeCA(ctx, revoke.CARequest{Principal: p, CA: "issuing", Reason: pki.ReasonCACompromise}); err != nil {
				t.Fatal(err)
			}
			if err := tIssueOn(t, a, "issuing"); !errors.Is(err, ca.ErrNotIssuing) {
				t.Fatalf("after revoke: %v, want ErrNotIssuing", err)
			}
			if _, err := a.cas.Delete(ctx, p, "issuing"); err != nil {
				t.Fatal(err)
			}
			if err := tIssueOn(t, a, "issuing"); !errors.Is(err, ca.ErrNotIssuing) {
				t.Fatalf("after delete: %v, want ErrNotIssuing", err)
			}
		})
	}
}

// TestCAChangeByAnotherReplica: a change written to the database by
// another process (here: straight into the store, past this process's
// services) applies within ca.CacheMaxAge.
func TestCAChangeByAnotherReplica(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			a, clk := tCAApp(t, b)
			ctx := context.Background()
			if err := tIssueOn(t, a, "issuing"); err != nil { // caches the record
				t.Fatalf("before: %v", err)
			}
			c, err := a.store.GetCA(ctx, "issuing")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Disable(clk.Now()); err != nil {
				t.Fatal(err)
			}
			if err := a.store.UpdateCA(ctx, c, audit.New(authz.System(), clk.Now(), "ca.disable", c.ID, nil)); err != nil {
				t.Fatal(err)
			}
			// Within the window the cached record is still served: the
			// fake clock stands 1 ms short of the bound.
			clk.Advance(ca.CacheMaxAge - time.Millisecond)
			if err := tIssueOn(t, a, "issuing"); err != nil {
				t.Fatalf("refused inside the window: %v (the cache was not used?)", err)
			}
			clk.Advance(time.Millisecond)
			if err := tIssueOn(t, a, "issuing"); !errors.Is(err, ca.ErrNotIssuing) {
				t.Fatalf("%v after the change: %v, want ErrNotIssuing", ca.CacheMaxAge, err)
			}
		})
	}
}
