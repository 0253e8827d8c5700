package store_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// TestInstanceKeys: the public keys that are never a managed key are read
// from every place the instance keeps its own keys: CA certificates
// (soft-deleted CAs too), the CSR of a pending external CA, OCSP
// responder certificates and audit keys.
func TestInstanceKeys(t *testing.T) {
	t.Parallel()
	for name, open := range rewrapStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
			newKey := func() crypto.Signer {
				k, err := pki.ECDSAP256.Generate(nil)
				if err != nil {
					t.Fatal(err)
				}
				return k
			}
			selfSigned := func(k crypto.Signer, isCA bool) []byte {
				tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "t"},
					NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
			rootKey, deletedKey, pendingKey, ocspKey, auditKey := newKey(), newKey(), newKey(), newKey(), newKey()
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "p"}}, pendingKey)
			if err != nil {
				t.Fatal(err)
			}
			deletedAt := now.Add(time.Minute)
			for _, c := range []*ca.CA{
				{ID: "ca_root", Name: "root", Kind: ca.KindRoot, Status: ca.StatusActive, CertDER: selfSigned(rootKey, true)},
				{ID: "ca_gone", Name: "gone", Kind: ca.KindRoot, Status: ca.StatusDeleted, CertDER: selfSigned(deletedKey, true),
					PreviousStatus: ca.StatusActive, DeletedAt: &deletedAt, RestorableUntil: &deletedAt},
				{ID: "ca_pend", Name: "pending", Kind: ca.KindIntermediate, Status: ca.StatusPending, External: true, CSRDER: csr},
			} {
				c.Key = keys.Ref{Provider: "software", ID: "k-" + c.ID, Algorithm: pki.ECDSAP256, Blob: []byte{2}}
				c.CreatedAt, c.UpdatedAt = now, now
				if err := db.CreateCA(ctx, c, audit.New(authz.System(), now, "ca.create", c.ID, nil)); err != nil {
					t.Fatalf("create CA %s: %v", c.ID, err)
				}
			}
			if err := db.PutOCSPResponder(ctx, &revoke.Responder{CAID: "ca_root", CertDER: selfSigned(ocspKey, false),
				Key: keys.Ref{Provider: "software", ID: "k-ocsp", Algorithm: pki.ECDSAP256, Blob: []byte{2}}, NotAfter: now.Add(time.Hour), CreatedAt: now},
				audit.New(authz.System(), now, "ocsp.responder", "ca_root", nil)); err != nil {
				t.Fatal(err)
			}
			spki, err := x509.MarshalPKIXPublicKey(auditKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAuditKey(ctx, &audit.Key{ID: "ak_1", Key: keys.Ref{Provider: "software", ID: "k-audit", Algorithm: pki.ECDSAP256, Blob: []byte{2}},
				PublicKey: spki, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}

			own, err := db.InstanceKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for what, k := range map[string]crypto.Signer{"root CA": rootKey, "deleted CA": deletedKey, "pending CA's CSR": pendingKey, "OCSP responder": ocspKey, "audit key": auditKey} {
				if err := keys.CheckNotInstanceKey(k.Public(), own); err == nil {
					t.Errorf("the %s's key is not among the instance keys", what)
				}
			}
			if err := keys.CheckNotInstanceKey(newKey().Public(), own); err != nil {
				t.Errorf("an unrelated key: %v", err)
			}
			if len(own) != 5 {
				t.Errorf("%d instance keys, want 5", len(own))
			}
		})
	}
}
