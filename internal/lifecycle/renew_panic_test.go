package lifecycle_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
)

// panickyIssuer stands in for the issuance path (which a test cannot make
// panic on purpose): it panics when renewing badSerial and succeeds
// otherwise.
type panickyIssuer struct{ badSerial string }

func (p panickyIssuer) Issue(_ context.Context, req issue.Request) (*issue.Result, error) {
	if req.Replaces == p.badSerial {
		var m map[string]int
		m["bad record"]++
	}
	return &issue.Result{Cert: &inventory.Certificate{Serial: "aa" + req.Replaces}}, nil
}

type noRevoker struct{}

func (noRevoker) Revoke(context.Context, revoke.Request) (*inventory.Revocation, bool, error) {
	return nil, false, nil
}

// TestRenewalPanicIsAFailedAttempt: a renewal that panics is that
// certificate's recorded failure (backoff, renew error, alert); the other
// certificates of the run are renewed, and the run itself completes.
func TestRenewalPanicIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	for name, db := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Second)
			clk := clock.NewFake(now)
			rec := &authz.PrincipalRecord{ID: "p_owner", Name: "owner", Kind: authz.KindMachine, CreatedAt: now, CreatedBy: "test"}
			if err := db.CreatePrincipal(ctx, rec, audit.New(authz.System(), now, "principal.create", rec.Name, nil)); err != nil {
				t.Fatal(err)
			}
			var serials []string
			for i := range 3 {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(1000 + i)), Subject: pkix.Name{CommonName: "r.test"},
					DNSNames: []string{"r.test"}, NotBefore: now.Add(-25 * 24 * time.Hour), NotAfter: now.Add(5 * 24 * time.Hour)}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
				if err != nil {
					t.Fatal(err)
				}
				leaf, _ := x509.ParseCertificate(der)
				c := issue.Record(leaf, "ca_test", "internal_service", rec.Name, nil, nil, now)
				c.DER, c.AutoRenew = der, true
				if err := db.InsertCertificate(ctx, c, audit.New(authz.System(), now, "certificate.issue", c.Serial, nil)); err != nil {
					t.Fatal(err)
				}
				serials = append(serials, c.Serial)
			}
			svc, err := lifecycle.New(lifecycle.Config{Clock: clk, Log: slog.New(slog.DiscardHandler)}, db,
				panickyIssuer{badSerial: serials[1]}, noRevoker{}, profile.NewCatalog(db, clk.Now))
			if err != nil {
				t.Fatal(err)
			}
			res, err := svc.RenewDue(ctx)
			if err != nil || res.Renewed != 2 || res.Failed != 1 {
				t.Fatalf("RenewDue = %+v, %v; want 2 renewed and 1 failed", res, err)
			}
			bad, err := db.GetCertificate(ctx, serials[1])
			if err != nil {
				t.Fatal(err)
			}
			if bad.RenewFailures != 1 || !strings.Contains(bad.RenewError, "panic") || !bad.RenewRetryAt.After(now) {
				t.Errorf("the panicking renewal is not a recorded failure: failures %d, error %q, retry %v", bad.RenewFailures, bad.RenewError, bad.RenewRetryAt)
			}
		})
	}
}
