package revoke_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

// offlineRoot is a root whose key the test keeps, as the ceremony does.
type offlineRoot struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func newOfflineRoot(t *testing.T, cn string) offlineRoot {
	t.Helper()
	key := mustKey(t)
	ski, _ := pki.SubjectKeyID(key.Public())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: start.Add(-day), NotAfter: start.Add(20 * 365 * day),
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski, AuthorityKeyId: ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return offlineRoot{key: key, cert: mustParse(t, der)}
}

// crl signs a CRL numbered n under o; mutate may change the template.
func (o offlineRoot) crl(t testing.TB, n int64, this time.Time, mutate func(*x509.RevocationList)) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: this, NextUpdate: this.Add(90 * day)}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, o.cert, o.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// importOfflineRoot makes an offline root and imports it as name.
func importOfflineRoot(t *testing.T, e *env, name string) (offlineRoot, *ca.CA) {
	t.Helper()
	off := newOfflineRoot(t, "Offline Root")
	rec, err := e.issuer.ImportRoot(context.Background(), admin, name, off.cert)
	if err != nil {
		t.Fatal(err)
	}
	return off, rec
}

// signPending creates the pending external CA name and returns the
// certificate o signs for it, as the ceremony's sign-intermediate does.
func (o offlineRoot) signPending(t *testing.T, e *env, name string) *x509.Certificate {
	t.Helper()
	pending, err := e.issuer.CreateExternal(context.Background(), admin, &ca.Spec{Name: name, Subject: pkix.Name{CommonName: "Offline Issuing " + name}, KeyAlg: pki.ECDSAP256, Validity: 365 * day})
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := pki.ParseCSR(pending.CSRDER)
	serial, _ := pki.NewSerial(nil)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject, NotBefore: start.Add(-time.Hour), NotAfter: start.Add(5 * 365 * day),
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, o.cert, csr.PublicKey, o.key)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, der)
}

// importChild signs the pending external CA name under o and imports its
// certificate: a CA of this server under the offline root.
func (o offlineRoot) importChild(t *testing.T, e *env, name string) (*x509.Certificate, *ca.CA) {
	t.Helper()
	cert := o.signPending(t, e, name)
	c, err := e.issuer.ImportCertificate(context.Background(), admin, name, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert, c
}

func auditCount(t *testing.T, e *env, action, target string) int {
	t.Helper()
	n := 0
	err := e.db.EachAuditEvent(context.Background(), 1, func(ev *audit.Event) error {
		if ev.Action == action && (target == "" || ev.Target == target) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func freshness(t *testing.T, svc *revoke.Service, caID string) revoke.Freshness {
	t.Helper()
	for _, f := range svc.Freshness() {
		if f.CAID == caID {
			return f
		}
	}
	t.Fatalf("no freshness for CA %s", caID)
	return revoke.Freshness{}
}

// TestOfflineRootCRL: an offline root's CRL is the one uploaded, checked
// against its certificate and never rolled back; the server signs no CRL
// and no OCSP answer for it, and a CRL listing a CA it signed revokes and
// disables that CA here.
func TestOfflineRootCRL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	off, rec := importOfflineRoot(t, e, "offline")
	extCert, _ := off.importChild(t, e, "ext")

	// Nothing uploaded yet: no CRL (404 at its URL), and the freshness
	// says what to do.
	if _, err := e.svc.CRL(ctx, rec.ID); !errors.Is(err, revoke.ErrNoCRL) || !errors.Is(err, revoke.ErrNoCA) {
		t.Fatalf("CRL before any upload = %v, want ErrNoCRL", err)
	}
	e.svc.MaintainCRLs(ctx)
	e.svc.MaintainOCSP(ctx)
	if f := freshness(t, e.svc, rec.ID); !strings.Contains(f.CRLError, "ca import-crl") || f.OCSPError != "" {
		t.Errorf("freshness before an upload: CRL error %q, OCSP error %q", f.CRLError, f.OCSPError)
	}
	if n := auditCount(t, e, "crl.sign", rec.ID); n != 0 {
		t.Fatalf("the server signed %d CRLs for the offline root", n)
	}
	resp := e.svc.Respond(ctx, rec.ID, ocspReq(t, extCert, off.cert, crypto.SHA1))
	if _, err := xocsp.ParseResponse(resp.DER, nil); !errors.Is(err, xocsp.ResponseError{Status: xocsp.Unauthorized}) {
		t.Errorf("OCSP for the offline root: %v, want unauthorized", err)
	}

	other := newOfflineRoot(t, "Offline Root") // same name, another key
	stranger := newOfflineRoot(t, "Someone Else")
	noon := start.Add(time.Hour)
	e.clk.Set(noon)
	for _, tt := range []struct {
		name string
		ca   string
		p    authz.Principal
		der  []byte
		want error
	}{
		{"not an offline CA", "root", admin, off.crl(t, 1, noon, nil), revoke.ErrInvalid},
		{"no permission", "offline", authz.Principal{}, off.crl(t, 1, noon, nil), revoke.ErrForbidden},
		{"signed by another key", "offline", admin, other.crl(t, 1, noon, nil), revoke.ErrInvalid},
		{"another issuer", "offline", admin, stranger.crl(t, 1, noon, nil), revoke.ErrInvalid},
		{"nextUpdate passed", "offline", admin, off.crl(t, 1, noon.Add(-100*day), nil), revoke.ErrInvalid},
		{"thisUpdate ahead", "offline", admin, off.crl(t, 1, noon.Add(time.Hour), nil), revoke.ErrInvalid},
		{"delta CRL", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: []byte{2, 1, 1}}}
		}), revoke.ErrInvalid},
		{"certificateHold", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: extCert.SerialNumber, RevocationTime: noon, ReasonCode: 6}}
		}), revoke.ErrInvalid},
		{"serial zero", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(0), RevocationTime: noon}}
		}), revoke.ErrInvalid},
		{"negative serial", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(-5), RevocationTime: noon}}
		}), revoke.ErrInvalid},
		{"issuing distribution point", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Value: []byte{0x30, 0x03, 0x81, 0x01, 0xff}}} // onlyContainsUserCerts
		}), revoke.ErrInvalid},
		{"certificateIssuer entry", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: noon,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0x00}}}}}
		}), revoke.ErrInvalid},
		{"unknown critical entry extension", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) {
			r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: noon,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{0x05, 0x00}}}}}
		}), revoke.ErrInvalid},
		{"SHA-1 signature", "offline", admin, off.crl(t, 1, noon, func(r *x509.RevocationList) { r.SignatureAlgorithm = x509.ECDSAWithSHA1 }), revoke.ErrInvalid},
		{"not a CRL", "offline", admin, []byte("garbage"), revoke.ErrInvalid},
		{"too large", "offline", admin, make([]byte, revoke.MaxUploadedCRL+1), revoke.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Each is refused for its own reason, not for a CRL an
			// earlier case let through.
			if _, err := e.svc.ImportCRL(ctx, tt.p, tt.ca, tt.der); !errors.Is(err, tt.want) || strings.Contains(err.Error(), "not greater") {
				t.Errorf("ImportCRL = %v, want %v", err, tt.want)
			}
		})
	}
	if stored, _ := e.db.LatestCRL(ctx, rec.ID); stored != nil {
		t.Fatalf("a refused upload stored CRL %d", stored.Number)
	}

	first := off.crl(t, 3, noon.Add(-time.Minute), nil)
	got, err := e.svc.ImportCRL(ctx, admin, "offline", first)
	if err != nil {
		t.Fatalf("ImportCRL: %v", err)
	}
	if got.Number != 3 || got.Entries != 0 || len(got.RevokedCAs) != 0 || got.CAID != rec.ID {
		t.Errorf("imported = %+v", got)
	}
	served, err := e.svc.CRL(ctx, rec.ID)
	if err != nil || !bytes.Equal(served.DER, first) {
		t.Fatalf("served CRL: %v", err)
	}
	if n := auditCount(t, e, "ca.import_crl", rec.ID); n != 1 {
		t.Errorf("%d ca.import_crl events, want 1", n)
	}
	for _, n := range []int64{3, 2} {
		if _, err := e.svc.ImportCRL(ctx, admin, "offline", off.crl(t, n, noon, nil)); !errors.Is(err, revoke.ErrInvalid) || !strings.Contains(err.Error(), "not greater") {
			t.Errorf("upload of CRL %d after 3 = %v, want a refused rollback", n, err)
		}
	}
	if _, err := e.svc.RegenerateCRL(ctx, rec.ID); !errors.Is(err, revoke.ErrInvalid) {
		t.Errorf("RegenerateCRL of the offline root = %v, want ErrInvalid", err)
	}
	e.clk.Set(noon.Add(5 * day)) // past the server's own CRL refresh schedule
	e.svc.MaintainCRLs(ctx)
	if served, err := e.svc.CRL(ctx, rec.ID); err != nil || !bytes.Equal(served.DER, first) {
		t.Errorf("after maintenance the offline root serves another CRL (%v)", err)
	}
	if f := freshness(t, e.svc, rec.ID); f.Failing() || f.CRLNumber != 3 || !f.CRLRefreshDue.Equal(noon.Add(-time.Minute).Add(83*day)) {
		t.Errorf("freshness: %+v", f)
	}
	if n := auditCount(t, e, "crl.sign", rec.ID); n != 0 {
		t.Fatalf("the server signed %d CRLs for the offline root", n)
	}

	// A CA it signed is revoked at the ceremony, not here.
	if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "ext"}); !errors.Is(err, revoke.ErrInvalid) || !strings.Contains(err.Error(), "ceremony") {
		t.Errorf("RevokeCA of a CA the offline root signed = %v", err)
	}
	revokedAt := noon.Add(5*day - time.Hour).Truncate(time.Second)
	listing := off.crl(t, 4, noon.Add(5*day-time.Minute), func(r *x509.RevocationList) {
		r.RevokedCertificateEntries = []x509.RevocationListEntry{
			{SerialNumber: extCert.SerialNumber, RevocationTime: revokedAt, ReasonCode: int(pki.ReasonCACompromise)},
			{SerialNumber: big.NewInt(12345), RevocationTime: revokedAt, ReasonCode: int(pki.ReasonSuperseded)}, // not a CA of this server
		}
	})
	got, err = e.svc.ImportCRL(ctx, admin, "offline", listing)
	if err != nil {
		t.Fatal(err)
	}
	if got.Number != 4 || got.Entries != 2 || !slices.Equal(got.RevokedCAs, []string{"ext"}) {
		t.Errorf("imported = %+v", got)
	}
	if c, _ := e.db.GetCA(ctx, "ext"); c.Status != ca.StatusDisabled {
		t.Errorf("CA ext is %s after its revocation, want disabled", c.Status)
	}
	_, r, err := e.db.LookupSerial(ctx, rec.ID, serialOf(extCert))
	if err != nil || r == nil || r.Reason != pki.ReasonCACompromise || !r.CA || !r.RevokedAt.Equal(revokedAt) {
		t.Errorf("revocation of ext = %+v, %v", r, err)
	}
	if _, err := e.issuer.Issue(ctx, issue.Request{Principal: machine, CA: "ext", Profile: "web_server", KeyAlgorithm: pki.ECDSAP256, DNSNames: []string{"a.example.com"}}); !errors.Is(err, ca.ErrNotIssuing) {
		t.Errorf("Issue from the revoked CA = %v", err)
	}

	// A restarted server serves the upload; as its nextUpdate nears, the
	// freshness says a ceremony is due.
	svc := e.restart(t)
	if served, err := svc.CRL(ctx, rec.ID); err != nil || !bytes.Equal(served.DER, listing) {
		t.Fatalf("after a restart: %v", err)
	}
	e.clk.Set(noon.Add(5*day + 84*day))
	svc.MaintainCRLs(ctx)
	if f := freshness(t, svc, rec.ID); !strings.Contains(f.CRLError, "due for replacement") {
		t.Errorf("freshness a week before nextUpdate: %+v", f)
	}
	if served, err := svc.CRL(ctx, rec.ID); err != nil || !bytes.Equal(served.DER, listing) {
		t.Errorf("a CRL due for replacement is still served: %v", err)
	}
}

// TestOfflineRootCRLKeepsRevocations: a newer CRL of an offline root
// must list every serial the stored CRL listed and every revocation
// recorded under the root; one that drops any (a stale copy from the
// ceremony) is refused, naming the serials, and nothing changes.
func TestOfflineRootCRLKeepsRevocations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	off, rec := importOfflineRoot(t, e, "offline")
	extCert, _ := off.importChild(t, e, "ext")
	noon := start.Add(time.Hour)
	e.clk.Set(noon)
	revokedAt := noon.Add(-time.Hour)
	entry := func(serial *big.Int) x509.RevocationListEntry {
		return x509.RevocationListEntry{SerialNumber: serial, RevocationTime: revokedAt, ReasonCode: int(pki.ReasonCACompromise)}
	}
	foreign := big.NewInt(12345) // a certificate the root signed for no CA of this server
	listing := off.crl(t, 2, noon, func(r *x509.RevocationList) {
		r.RevokedCertificateEntries = []x509.RevocationListEntry{entry(extCert.SerialNumber), entry(foreign)}
	})
	if _, err := e.svc.ImportCRL(ctx, admin, "offline", listing); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		entries []x509.RevocationListEntry
		missing []string
	}{
		{"lists none", nil, []string{serialOf(extCert), pki.SerialHex(foreign)}},
		{"drops the CA", []x509.RevocationListEntry{entry(foreign)}, []string{serialOf(extCert)}},
		{"drops the foreign serial", []x509.RevocationListEntry{entry(extCert.SerialNumber)}, []string{pki.SerialHex(foreign)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stale := off.crl(t, 3, noon, func(r *x509.RevocationList) { r.RevokedCertificateEntries = tt.entries })
			_, err := e.svc.ImportCRL(ctx, admin, "offline", stale)
			if !errors.Is(err, revoke.ErrInvalid) || !strings.Contains(err.Error(), "permanent") {
				t.Fatalf("ImportCRL of a CRL dropping %v = %v, want refused", tt.missing, err)
			}
			for _, s := range tt.missing {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the refusal does not name serial %s: %v", s, err)
				}
			}
		})
	}
	if stored, _ := e.db.LatestCRL(ctx, rec.ID); stored == nil || stored.Number != 2 {
		t.Fatalf("after refused uploads the stored CRL is %+v, want number 2", stored)
	}
	// A CRL listing all of them and more is taken.
	more := off.crl(t, 3, noon, func(r *x509.RevocationList) {
		r.RevokedCertificateEntries = []x509.RevocationListEntry{entry(foreign), entry(big.NewInt(777)), entry(extCert.SerialNumber)}
	})
	if _, err := e.svc.ImportCRL(ctx, admin, "offline", more); err != nil {
		t.Fatalf("ImportCRL of a CRL keeping every revocation: %v", err)
	}

	// A revocation recorded under another offline root, with no CRL
	// stored yet, must be on its first CRL too.
	off2, rec2 := importOfflineRoot(t, e, "offline2")
	ext2Cert, ext2 := off2.importChild(t, e, "ext2")
	r := &inventory.Revocation{Serial: serialOf(ext2Cert), CAID: rec2.ID, RevokedAt: revokedAt, Reason: pki.ReasonKeyCompromise, RevokedBy: "alice", NotAfter: ext2Cert.NotAfter, CA: true}
	if _, _, err := e.db.RevokeCA(ctx, r, ext2, audit.New(admin, noon, "ca.revoke", ext2.ID, map[string]any{"reason": "keyCompromise"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImportCRL(ctx, admin, "offline2", off2.crl(t, 1, noon, nil)); !errors.Is(err, revoke.ErrInvalid) || !strings.Contains(err.Error(), serialOf(ext2Cert)) {
		t.Fatalf("ImportCRL without a recorded revocation = %v, want refused naming %s", err, serialOf(ext2Cert))
	}
	if _, err := e.svc.ImportCRL(ctx, admin, "offline2", off2.crl(t, 1, noon, func(r *x509.RevocationList) {
		r.RevokedCertificateEntries = []x509.RevocationListEntry{entry(ext2Cert.SerialNumber)}
	})); err != nil {
		t.Fatalf("ImportCRL listing the recorded revocation: %v", err)
	}
}

// TestRevokeCAOfflineParentFailsClosed: when the parent of a CA cannot be
// read (any error but not found), RevokeCA fails rather than revoking a
// CA an offline root signed here.
func TestRevokeCAOfflineParentFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	off, rec := importOfflineRoot(t, e, "offline")
	extCert, _ := off.importChild(t, e, "ext")
	kp, err := software.New(e.kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("database is locked")
	svc, err := revoke.New(e.cfg, &failingGetCA{DB: e.db, id: rec.ID, err: broken}, kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "ext"}); !errors.Is(err, broken) {
		t.Fatalf("RevokeCA with the parent unreadable = %v, want the store's error", err)
	}
	if c, err := e.db.GetCA(ctx, "ext"); err != nil || c.Status != ca.StatusActive {
		t.Errorf("CA ext after the failed revocation: %+v (%v), want active", c, err)
	}
	if _, err := e.db.GetRevocation(ctx, serialOf(extCert)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revocation of ext was recorded: %v", err)
	}
}

// failingGetCA is a store whose GetCA of the CA id fails with err.
type failingGetCA struct {
	*store.DB
	id  string
	err error
}

func (s *failingGetCA) GetCA(ctx context.Context, idOrName string) (*ca.CA, error) {
	if idOrName == s.id {
		return nil, s.err
	}
	return s.DB.GetCA(ctx, idOrName)
}

// FuzzCheckUploadedCRL: whatever bytes are uploaded, the check never
// panics, and what it accepts verifies under the root, names it as issuer,
// carries a number and a nextUpdate ahead, no SHA-1 or MD5 signature, and
// only positive serials and accepted reasons.
func FuzzCheckUploadedCRL(f *testing.F) {
	key, _ := pki.ECDSAP256.Generate(nil)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fuzz Root"},
		NotBefore: start.Add(-day), NotAfter: start.Add(365 * day),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	o := offlineRoot{key: key, cert: root}
	f.Add(o.crl(f, 1, start, nil))
	f.Add(o.crl(f, 7, start, func(r *x509.RevocationList) {
		r.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(99), RevocationTime: start, ReasonCode: 2}}
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		rl, err := revoke.CheckUploadedCRL(data, root, start.Add(time.Minute))
		if err != nil {
			return
		}
		if rl.CheckSignatureFrom(root) != nil || !bytes.Equal(rl.RawIssuer, root.RawSubject) || rl.Number == nil || !rl.NextUpdate.After(start) {
			t.Fatalf("accepted a CRL that does not pass its own checks: %+v", rl)
		}
		if rl.SignatureAlgorithm == x509.ECDSAWithSHA1 || rl.SignatureAlgorithm == x509.SHA1WithRSA || rl.SignatureAlgorithm == x509.MD5WithRSA {
			t.Fatalf("accepted a CRL signed with %s", rl.SignatureAlgorithm)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if !pki.Reason(e.ReasonCode).Valid() {
				t.Fatalf("accepted reason %d", e.ReasonCode)
			}
			if e.SerialNumber.Sign() <= 0 {
				t.Fatalf("accepted serial %v", e.SerialNumber)
			}
		}
	})
}
