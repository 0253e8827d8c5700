package app

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// TestExportRefusesInstanceKey: the key export's last line of defence. The
// test holds the KEK (an attacker of issue 13 #4 does not), unwraps the
// issuing CA's key, re-wraps it correctly as certificate S's managed key
// and writes it onto S's row (1) with the CA's own certificate as S's
// certificate, (2) with a forged end-entity certificate for the CA's
// public key, serial S, signed by the CA. Both match "the row's public
// key"; both exports are refused with 409 and audited, the first because
// the row holds no end-entity certificate of its CA, the second because
// the key is one of the instance's own.
func TestExportRefusesInstanceKey(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			in := tNewServer(t, be.dbURL(t))
			deployer := tKeyExporter(t, in, "deployer")
			cert := tIssueRetained(t, in, deployer, "svc.example.internal")
			c, err := in.app.store.GetCA(ctx, "issuing")
			if err != nil {
				t.Fatal(err)
			}
			caCert, err := x509.ParseCertificate(c.CertDER)
			if err != nil {
				t.Fatal(err)
			}
			caKey, err := in.app.keys.Signer(ctx, c.Key, keys.CAPurpose(c.ID))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := in.app.keys.Wrap(ctx, keys.ManagedPurpose(cert.Serial), caKey)
			if err != nil {
				t.Fatal(err)
			}
			serial, ok := new(big.Int).SetString(cert.Serial, 16)
			if !ok {
				t.Fatalf("serial %q", cert.Serial)
			}
			forged, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
				SerialNumber: serial, Subject: pkix.Name{CommonName: "svc.example.internal"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
				KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
			}, caCert, caKey.Public(), caKey)
			if err != nil {
				t.Fatal(err)
			}
			db := tDBWriter(t, in.cfg)
			for _, tc := range []struct {
				name, detail string
				derBytes     []byte
			}{
				{name: "CA certificate on the row", derBytes: c.CertDER, detail: "not an end-entity certificate issued by its CA"},
				{name: "forged end-entity certificate", derBytes: forged, detail: "instance's own keys"},
			} {
				tExecArgs(t, db, in.cfg, 1, "UPDATE certificates SET managed_key_id = ?, managed_key_blob = ?, der = ? WHERE serial = ?",
					ref.ID, ref.Blob, tc.derBytes, cert.Serial)
				r := in.raw("GET", "/api/v1/certificates/"+cert.Serial+"/key", deployer, nil)
				if r.status == http.StatusOK && tSamePublic(tPEMKeyPublic(t, r.body), caCert.PublicKey) {
					t.Fatalf("%s: the issuing CA's private key was handed out", tc.name)
				}
				if r.status != http.StatusConflict || strings.Contains(string(r.body), "PRIVATE KEY") {
					t.Fatalf("%s: export %d %s, want 409 without a key", tc.name, r.status, tTrim(r.body))
				}
				if d := r.apiErr(t).Detail; !strings.Contains(d, tc.detail) {
					t.Errorf("%s: refusal detail %q, want it to say %q", tc.name, d, tc.detail)
				}
				evs := tAuditEventsOf(t, in, "key.export")
				if len(evs) == 0 || evs[len(evs)-1].Outcome != audit.Failed || evs[len(evs)-1].Target != cert.Serial {
					t.Errorf("%s: key.export events = %+v, want the last a failure for %s", tc.name, evs, cert.Serial)
				}
			}
			if r := tSignWith(t, in, "issuing", "after.example.internal"); r.status != http.StatusCreated {
				t.Fatalf("issuing CA after the attack: %d %s", r.status, tTrim(r.body))
			}
		})
	}
}

// TestCheckLegacyManaged: the re-wrap's check of a certificate row holding
// a legacy key. Only an end-entity certificate issued by the row's CA
// under the row's serial, whose key is not one of the instance's own,
// passes.
func TestCheckLegacyManaged(t *testing.T) {
	t.Parallel()
	newKey := func() crypto.Signer {
		k, err := pki.ECDSAP256.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mk := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) []byte {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	now := time.Now()
	caTmpl := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn}, NotBefore: now, NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	caKey, otherKey, ocspKey, leafKey := newKey(), newKey(), newKey(), newKey()
	caDER := mk(caTmpl(1, "CA"), caTmpl(1, "CA"), caKey.Public(), caKey)
	otherDER := mk(caTmpl(2, "other CA"), caTmpl(2, "other CA"), otherKey.Public(), otherKey)
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, pub crypto.PublicKey) []byte {
		return mk(&x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now, NotAfter: now.Add(time.Hour),
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature}, caCert, pub, caKey)
	}
	own := []crypto.PublicKey{caKey.Public(), otherKey.Public(), ocspKey.Public()}
	row := func(certDER, issuerDER []byte, serial string) *store.WrappedKey {
		k := &store.WrappedKey{Kind: store.KeyKindManaged, Owner: serial, CertDER: certDER, IssuerDER: issuerDER}
		if c, err := x509.ParseCertificate(certDER); err == nil {
			k.Public = c.PublicKey
		}
		return k
	}
	for _, tc := range []struct {
		name string
		k    *store.WrappedKey
		want error
	}{
		{"end-entity certificate of its CA", row(leaf(0x1234, leafKey.Public()), caDER, "1234"), nil},
		{"the CA's own certificate", row(caDER, caDER, "01"), issue.ErrNotManagedCertificate},
		{"another serial", row(leaf(0x1234, leafKey.Public()), caDER, "1235"), issue.ErrNotManagedCertificate},
		{"issued by another CA", row(leaf(0x1234, leafKey.Public()), otherDER, "1234"), issue.ErrNotManagedCertificate},
		{"its CA has no certificate", row(leaf(0x1234, leafKey.Public()), nil, "1234"), issue.ErrNotManagedCertificate},
		{"an OCSP responder's key", row(leaf(0x1234, ocspKey.Public()), caDER, "1234"), keys.ErrInstanceKey},
		{"another CA's key", row(leaf(0x1234, otherKey.Public()), caDER, "1234"), keys.ErrInstanceKey},
	} {
		err := checkLegacyManaged(tc.k, own)
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Other kinds of record are checked against their own record only.
	if err := checkLegacyManaged(&store.WrappedKey{Kind: store.KeyKindCA, Owner: "ca_1"}, own); err != nil {
		t.Errorf("CA row: %v", err)
	}
}
