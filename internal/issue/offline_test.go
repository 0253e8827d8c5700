package issue_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

// selfSigned makes a self-signed certificate from a template that mutate
// may spoil.
func selfSigned(t *testing.T, mutate func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key := mustKey(t, pki.ECDSAP256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Spoilt Root"},
		NotBefore: start.Add(-day), NotAfter: start.Add(365 * day),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, der)
}

// TestOfflineRoot: a root imported with its certificate only is a root of
// the instance that never signs here; an external CA it signed (at its
// ceremony) is placed under it when imported, chains to it, and issues.
func TestOfflineRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	offline := newOutsideCA(t, start) // its key stays "at the ceremony"

	rec, err := e.svc.ImportRoot(ctx, admin, "offline", offline.cert)
	if err != nil {
		t.Fatalf("ImportRoot: %v", err)
	}
	if rec.Kind != ca.KindRoot || !rec.Offline() || !rec.External || rec.Status != ca.StatusActive || rec.ParentID != "" ||
		rec.Key.Algorithm != pki.ECDSAP256 || rec.Key.Blob != nil || !bytes.Equal(rec.CertDER, offline.cert.Raw) {
		t.Fatalf("offline root record = %+v", rec)
	}
	var imported map[string]any
	err = e.db.EachAuditEvent(ctx, 1, func(ev *audit.Event) error {
		if ev.Action == "ca.import_root" && ev.Target == rec.ID {
			return json.Unmarshal(ev.Details, &imported)
		}
		return nil
	})
	if err != nil || imported["fingerprint"] != pki.Fingerprint(offline.cert.Raw) || imported["name"] != "offline" {
		t.Errorf("ca.import_root audit details %v (%v)", imported, err)
	}

	for _, tt := range []struct {
		name string
		p    authz.Principal
		ca   string
		cert *x509.Certificate
		want error
	}{
		{"name taken", admin, "offline", newOutsideCA(t, start).cert, issue.ErrConflict},
		{"same key again", admin, "offline-2", offline.cert, issue.ErrConflict},
		{"no permission", authz.Principal{}, "offline-3", newOutsideCA(t, start).cert, issue.ErrForbidden},
		{"bad name", admin, "Offline Root", newOutsideCA(t, start).cert, issue.ErrInvalid},
		{"not self-signed", admin, "offline-3", e.interCert, ca.ErrImport},
		{"not a CA", admin, "offline-3", selfSigned(t, func(c *x509.Certificate) { c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature }), ca.ErrImport},
		{"no cRLSign", admin, "offline-3", selfSigned(t, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign }), ca.ErrImport},
		{"expired", admin, "offline-3", selfSigned(t, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = start.Add(-10*day), start.Add(-day) }), ca.ErrImport},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.ImportRoot(ctx, tt.p, tt.ca, tt.cert); !errors.Is(err, tt.want) {
				t.Errorf("ImportRoot = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := e.db.GetCA(ctx, "offline-3"); err == nil {
		t.Fatal("a refused import left a CA")
	}

	// It never signs here.
	if _, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "offline", Profile: "web_server", CSR: mustCSR(t, mustKey(t, pki.ECDSAP256), names("web_server"))}); !errors.Is(err, ca.ErrNotIssuing) {
		t.Errorf("Issue from the offline root = %v, want ca.ErrNotIssuing", err)
	}
	if _, err := e.svc.CreateIntermediate(ctx, admin, "offline", &ca.Spec{Name: "under", Subject: pkix.Name{CommonName: "Under"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day}); !errors.Is(err, ca.ErrNotIssuing) {
		t.Errorf("CreateIntermediate under the offline root = %v, want ca.ErrNotIssuing", err)
	}
	all, err := e.db.ListCAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.VerifyKeys(ctx, all); err != nil {
		t.Errorf("VerifyKeys with an offline root: %v", err)
	}

	// The ceremony signs an external CA's CSR.
	// pending creates the pending external CA name; the root signs its CSR.
	pending := func(name string) *x509.CertificateRequest {
		t.Helper()
		p, err := e.svc.CreateExternal(ctx, admin, &ca.Spec{Name: name, Subject: pkix.Name{CommonName: "Offline Issuing CA " + name}, KeyAlg: pki.ECDSAP256, Validity: 365 * day})
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.ParseCSR(p.CSRDER)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	// rootCRL is the root's CRL number n listing certs.
	rootCRL := func(n int64, certs ...*x509.Certificate) *revoke.StoredCRL {
		t.Helper()
		tmpl := &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: start, NextUpdate: start.Add(90 * day)}
		for _, c := range certs {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: start, ReasonCode: int(pki.ReasonKeyCompromise)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, offline.cert, offline.key)
		if err != nil {
			t.Fatal(err)
		}
		return &revoke.StoredCRL{Number: n, DER: der, ThisUpdate: start, NextUpdate: tmpl.NextUpdate, Entries: len(certs)}
	}
	csr := pending("ext")
	extCert := offline.sign(t, csr, csr.PublicKey, start, nil)
	if err := e.db.ImportCRL(ctx, rec.ID, rootCRL(2, extCert), audit.New(admin, start, "ca.import_crl", rec.ID, map[string]any{"number": 2})); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ImportCertificate(ctx, admin, "ext", extCert, nil)
	if !errors.Is(err, issue.ErrInvalid) || !strings.Contains(err.Error(), "revoked by the root's CRL number 2") {
		t.Fatalf("import of a certificate the root's CRL lists = %v, want refused naming CRL 2", err)
	}
	if c, err := e.db.GetCA(ctx, "ext"); err != nil || c.Status != ca.StatusPending || c.CertDER != nil {
		t.Fatalf("after the refused import the CA is %+v (%v), want pending without a certificate", c, err)
	}
	// Another certificate for the same key, not on the CRL, is taken.
	if _, err := e.svc.ImportCertificate(ctx, admin, "ext", offline.sign(t, csr, csr.PublicKey, start, nil), nil); err != nil {
		t.Fatalf("import of a certificate the CRL does not list: %v", err)
	}

	// The root's CRL listing a CA lands while its import runs: the CA is
	// disabled, and the import says why.
	csr2 := pending("ext2")
	ext2Cert := offline.sign(t, csr2, csr2.PublicKey, start, nil)
	racing := &crlDuringUpdate{DB: e.db, caID: rec.ID, crl: rootCRL(3, extCert, ext2Cert)}
	svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler)}, racing, e.profiles, e.kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ImportCertificate(ctx, admin, "ext2", ext2Cert, nil)
	if !errors.Is(err, issue.ErrInvalid) || !strings.Contains(err.Error(), "revoked by the root's CRL number 3") || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("import racing the root's CRL = %v, want refused and the CA disabled", err)
	}
	if c, err := e.db.GetCA(ctx, "ext2"); err != nil || c.Status != ca.StatusDisabled {
		t.Fatalf("after the racing import the CA is %+v (%v), want disabled", c, err)
	}
}

// crlDuringUpdate is a store whose first UpdateCA stores an offline root's
// CRL just before it writes: the upload lands while an import runs.
type crlDuringUpdate struct {
	*store.DB
	caID string
	crl  *revoke.StoredCRL
	done bool
}

func (s *crlDuringUpdate) UpdateCA(ctx context.Context, c *ca.CA, ev audit.Event) error {
	if !s.done {
		s.done = true
		if err := s.DB.ImportCRL(ctx, s.caID, s.crl, audit.New(admin, start, "ca.import_crl", s.caID, map[string]any{"number": s.crl.Number})); err != nil {
			return err
		}
	}
	return s.DB.UpdateCA(ctx, c, ev)
}
