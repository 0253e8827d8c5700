package lifecycle_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
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
	"github.com/certwright/certwright/internal/store"
)

// recordingRevoker notes the serials the rotation revokes.
type recordingRevoker struct {
	mu      sync.Mutex
	serials []string
}

func (r *recordingRevoker) Revoke(_ context.Context, req revoke.Request) (*inventory.Revocation, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serials = append(r.serials, req.Serial)
	return &inventory.Revocation{Serial: req.Serial}, true, nil
}

// insertCert stores a self-signed certificate for key, from CA caID,
// renewing replaces when set.
func insertCert(t *testing.T, db *store.DB, now time.Time, serial int64, key crypto.Signer, caID, replaces string) *inventory.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "rot.test"},
		DNSNames: []string{"rot.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	c := issue.Record(leaf, caID, "internal_service", "owner", nil, nil, now)
	c.Replaces = replaces
	if replaces != "" {
		c.RenewalKind = inventory.RenewalManual
	}
	if err := db.InsertCertificate(context.Background(), c, audit.New(authz.System(), now, "certificate.issue", c.Serial, nil)); err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRotationSuccessorMustLeaveTheRotatedKeyOrCA: a rotation counted
// whatever renewed an item as its replacement, so a renewal certifying the
// leaked key again (or, under --to-ca, one from the CA rotated away from)
// "replaced" it and stayed valid. Such a successor is no replacement: the
// item stays pending with the reason, and after the grace period both are
// revoked; a successor with a new key (from the new CA) still counts. A
// certificate of the rotated key that is neither item nor successor (issued
// as the rotation started) is revoked when the rotation ends.
func TestRotationSuccessorMustLeaveTheRotatedKeyOrCA(t *testing.T) {
	t.Parallel()
	for name, db := range openStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Second)
			clk := clock.NewFake(now)
			rv := &recordingRevoker{}
			svc, err := lifecycle.New(lifecycle.Config{Clock: clk, Log: slog.New(slog.DiscardHandler)}, db,
				panickyIssuer{}, rv, profile.NewCatalog(db, clk.Now))
			if err != nil {
				t.Fatal(err)
			}

			// By key: A's successor A2 certifies the leaked key again.
			leaked := newKey(t)
			a := insertCert(t, db, now, 2001, leaked, "ca_old", "")
			// By CA with --to-ca: B's successor B2 comes from the old CA,
			// C's successor C2 from the new one.
			b := insertCert(t, db, now, 2002, newKey(t), "ca_old", "")
			c := insertCert(t, db, now, 2003, newKey(t), "ca_old", "")
			start := func(id string, sel inventory.Selector, toCA string, items ...*inventory.Certificate) {
				r := &lifecycle.Rotation{ID: id, Selector: sel, ToCA: toCA, Reason: "keyCompromise", Grace: time.Hour,
					Status: lifecycle.RotationRunning, CreatedBy: "admin", CreatedAt: now}
				var its []lifecycle.RotationItem
				for _, c := range items {
					its = append(its, lifecycle.RotationItem{Serial: c.Serial, Method: lifecycle.MethodSignal, Status: lifecycle.ItemPending, UpdatedAt: now})
				}
				if err := db.CreateRotation(ctx, r, its, audit.New(authz.System(), now, "rotation.start", id, nil)); err != nil {
					t.Fatal(err)
				}
			}
			start("rot_key", inventory.Selector{SPKISHA256: a.SPKISHA256}, "", a)
			start("rot_ca", inventory.Selector{CAID: "ca_old"}, "ca_new", b, c)
			a2 := insertCert(t, db, now, 3001, leaked, "ca_old", a.Serial)
			b2 := insertCert(t, db, now, 3002, newKey(t), "ca_old", b.Serial)
			c2 := insertCert(t, db, now, 3003, newKey(t), "ca_new", c.Serial)
			// Issued for the leaked key as the rotation started (its
			// issuance checked the list just before): no item, no successor.
			a3 := insertCert(t, db, now, 3004, leaked, "ca_old", "")

			if _, err := svc.ProcessRotations(ctx); err != nil {
				t.Fatal(err)
			}
			items := map[string]lifecycle.RotationItem{}
			for _, id := range []string{"rot_key", "rot_ca"} {
				_, its, err := db.GetRotation(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range its {
					items[it.Serial] = it
				}
			}
			for serial, want := range map[string]string{a.Serial: "same key", b.Serial: "rotated away from"} {
				if it := items[serial]; it.Status != lifecycle.ItemPending || !strings.Contains(it.Error, want) {
					t.Errorf("item %s with an unfit successor: %s %q, want pending naming %q", serial, it.Status, it.Error, want)
				}
			}
			if it := items[c.Serial]; it.Status != lifecycle.ItemReplaced || it.NewSerial != c2.Serial {
				t.Errorf("item %s renewed from the new CA: %s -> %s, want replaced by %s", c.Serial, it.Status, it.NewSerial, c2.Serial)
			}

			clk.Advance(61 * time.Minute)
			if _, err := svc.ProcessRotations(ctx); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{a.Serial, a2.Serial, a3.Serial, b.Serial, b2.Serial, c.Serial} {
				if !slices.Contains(rv.serials, s) {
					t.Errorf("%s not revoked after the grace period (revoked: %v)", s, rv.serials)
				}
			}
			if slices.Contains(rv.serials, c2.Serial) {
				t.Errorf("the proper replacement %s was revoked", c2.Serial)
			}
		})
	}
}
