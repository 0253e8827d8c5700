package issue_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	zl "github.com/zmap/zlint/v3/lint"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store"
)

const base = "http://pki.example.internal:8080"

var (
	start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin = authz.WithRole("admin", authz.KindMachine, authz.RoleAdmin, authz.Scope{})
)

const day = 24 * time.Hour

// countingRand is crypto/rand that counts the bytes read, so a test can
// tell whether the key provider generated a key.
type countingRand struct{ n atomic.Int64 }

func (r *countingRand) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// env is a server's issuance path on real parts: SQLite store, software
// keys, zlint and the profile catalog, with a root (P-384, path length 1)
// and an issuing intermediate (P-256, path length 0) under it.
type env struct {
	db       *store.DB
	clk      *clock.Fake
	kek      []byte
	keyRand  *countingRand
	kp       *software.Provider
	profiles *profile.Catalog
	linter   *lint.Linter
	svc      *issue.Service

	root, inter         *ca.CA
	rootCert, interCert *x509.Certificate
}

func newKEK(t testing.TB) []byte {
	t.Helper()
	kek := make([]byte, software.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/db", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clk: clock.NewFake(start), kek: newKEK(t), keyRand: &countingRand{}}
	if e.kp, err = software.New(e.kek, e.keyRand); err != nil {
		t.Fatal(err)
	}
	if e.linter, err = lint.New(lint.Options{}); err != nil {
		t.Fatal(err)
	}
	e.profiles = profile.NewCatalog(db, e.clk.Now)
	e.svc = e.newService(t, e.kp)

	e.root, err = e.svc.CreateRoot(ctx, admin, &ca.Spec{
		Name: "root", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test Root CA"},
		KeyAlg: pki.ECDSAP384, Validity: 10 * 365 * day, MaxPathLen: 1,
	})
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	e.inter = e.intermediate(t, "root", "issuing", pki.ECDSAP256, 5*365*day, 0, nil)
	e.rootCert = mustParse(t, e.root.CertDER)
	e.interCert = mustParse(t, e.inter.CertDER)
	return e
}

func (e *env) newService(t *testing.T, kp *software.Provider) *issue.Service {
	t.Helper()
	svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler)}, e.db, e.profiles, kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// intermediate creates a CA under parent; mutate may adjust the spec.
func (e *env) intermediate(t *testing.T, parent, name string, alg pki.KeyAlgorithm, validity time.Duration, pathLen int, mutate func(*ca.Spec)) *ca.CA {
	t.Helper()
	spec := &ca.Spec{
		Name: name, Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test " + name},
		KeyAlg: alg, Validity: validity, MaxPathLen: pathLen,
	}
	if mutate != nil {
		mutate(spec)
	}
	c, err := e.svc.CreateIntermediate(context.Background(), admin, parent, spec)
	if err != nil {
		t.Fatalf("CreateIntermediate %s under %s: %v", name, parent, err)
	}
	return c
}

func (e *env) count(t *testing.T) int {
	t.Helper()
	n, err := e.db.CountCertificates(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustParse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func mustKey(t testing.TB, alg pki.KeyAlgorithm) crypto.Signer {
	t.Helper()
	k, err := alg.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify builds a chain for leaf with the last certificate of chain as the
// only root.
func verify(leaf *x509.Certificate, chain []*x509.Certificate, at time.Time) error {
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		inters.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inters, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

// rfcLints lints a signed certificate with zlint's RFC and community
// lints — the set the pre-issuance linter runs for a private PKI — so the
// certificate really issued, not only the lint copy, is checked.
func rfcLints(t *testing.T) func(*x509.Certificate) (warnings, failures []string) {
	t.Helper()
	reg, err := zl.GlobalRegistry().Filter(zl.FilterOptions{IncludeSources: zl.SourceList{
		zl.RFC5280, zl.RFC3279, zl.RFC5480, zl.RFC5891, zl.RFC6962, zl.RFC8813, zl.Community,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *x509.Certificate) (warnings, failures []string) {
		zc, err := zx509.ParseCertificate(c.Raw)
		if err != nil {
			t.Fatalf("zcrypto cannot parse the certificate: %v", err)
		}
		for name, r := range zlint.LintCertificateEx(zc, reg).Results {
			switch r.Status {
			case zl.Warn:
				warnings = append(warnings, name)
			case zl.Error, zl.Fatal:
				failures = append(failures, name+" "+r.Details)
			}
		}
		slices.Sort(warnings)
		return warnings, failures
	}
}

var ekuByName = map[string]x509.ExtKeyUsage{
	"server_auth":      x509.ExtKeyUsageServerAuth,
	"client_auth":      x509.ExtKeyUsageClientAuth,
	"code_signing":     x509.ExtKeyUsageCodeSigning,
	"email_protection": x509.ExtKeyUsageEmailProtection,
}

// names returns a request each built-in profile accepts.
func names(profileName string) *x509.CertificateRequest {
	org := []string{"Example Corp"}
	switch profileName {
	case "web_server":
		return &x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "www.example.internal", Organization: org, Country: []string{"DE"}},
			DNSNames:    []string{"api.example.internal"},
			IPAddresses: []net.IP{net.ParseIP("10.0.0.5")},
		}
	case "client_auth":
		return &x509.CertificateRequest{
			Subject:        pkix.Name{CommonName: "Alice Example", Organization: org},
			EmailAddresses: []string{"alice@example.com"},
		}
	case "code_signing":
		return &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "Example Corp Release Signing", Organization: org, Locality: []string{"Berlin"}},
		}
	case "person":
		return &x509.CertificateRequest{
			Subject:        pkix.Name{CommonName: "alice@example.com"},
			EmailAddresses: []string{"alice@example.com"},
		}
	case "internal_service":
		u, _ := url.Parse("spiffe://example.internal/ns/prod/sa/billing")
		return &x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "billing.svc.example.internal", OrganizationalUnit: []string{"prod"}},
			IPAddresses: []net.IP{net.ParseIP("fd00::5")},
			URIs:        []*url.URL{u},
		}
	}
	return &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x.example.internal"}, DNSNames: []string{"x.example.internal"}}
}

// keyCache generates each key type once per test; RSA is slow.
type keyCache struct {
	mu   sync.Mutex
	once map[pki.KeyAlgorithm]func() (crypto.Signer, error)
}

func (k *keyCache) get(t *testing.T, alg pki.KeyAlgorithm) crypto.Signer {
	t.Helper()
	k.mu.Lock()
	f, ok := k.once[alg]
	if !ok {
		f = sync.OnceValues(func() (crypto.Signer, error) { return alg.Generate(nil) })
		k.once[alg] = f
	}
	k.mu.Unlock()
	key, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// checkLeaf asserts what every leaf Certwright issues must carry.
func checkLeaf(t *testing.T, e *env, res *issue.Result, issuer *ca.CA, prof *profile.Profile, pub crypto.PublicKey, days int) {
	t.Helper()
	leaf := res.Leaf
	issuerCert := mustParse(t, issuer.CertDER)
	fam, bits, err := pki.DescribeKey(pub)
	if err != nil {
		t.Fatal(err)
	}

	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Error("certificate key is not the requested key")
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA {
		t.Error("leaf is not marked CA:FALSE")
	}
	ski, _ := pki.SubjectKeyID(pub)
	if !bytes.Equal(leaf.SubjectKeyId, ski) {
		t.Errorf("SKI = %x, want %x", leaf.SubjectKeyId, ski)
	}
	if len(issuerCert.SubjectKeyId) == 0 || !bytes.Equal(leaf.AuthorityKeyId, issuerCert.SubjectKeyId) {
		t.Errorf("AKI = %x, want issuer SKI %x", leaf.AuthorityKeyId, issuerCert.SubjectKeyId)
	}
	if want := []string{base + "/crl/" + issuer.ID + ".crl"}; !slices.Equal(leaf.CRLDistributionPoints, want) {
		t.Errorf("CRL DP = %v, want %v", leaf.CRLDistributionPoints, want)
	}
	if want := []string{base + "/ocsp/" + issuer.ID}; !slices.Equal(leaf.OCSPServer, want) {
		t.Errorf("OCSP = %v, want %v", leaf.OCSPServer, want)
	}
	if want := []string{base + "/ca/" + issuer.ID + ".crt"}; !slices.Equal(leaf.IssuingCertificateURL, want) {
		t.Errorf("caIssuers = %v, want %v", leaf.IssuingCertificateURL, want)
	}

	var wantEKU []x509.ExtKeyUsage
	for _, n := range prof.ExtKeyUsage {
		wantEKU = append(wantEKU, ekuByName[n])
	}
	if !slices.Equal(leaf.ExtKeyUsage, wantEKU) || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU = %v, want %v", leaf.ExtKeyUsage, wantEKU)
	}
	wantKU := x509.KeyUsageDigitalSignature
	if slices.Contains(prof.KeyUsage, "key_encipherment") && fam == pki.FamilyRSA {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if slices.Contains(prof.KeyUsage, "key_agreement") && fam == pki.FamilyECDSA {
		wantKU |= x509.KeyUsageKeyAgreement
	}
	if leaf.KeyUsage != wantKU {
		t.Errorf("KU = %b, want %b", leaf.KeyUsage, wantKU)
	}
	if fam != pki.FamilyRSA && leaf.KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
		t.Error("keyEncipherment on a non-RSA key")
	}
	if fam != pki.FamilyECDSA && leaf.KeyUsage&x509.KeyUsageKeyAgreement != 0 {
		t.Error("keyAgreement on a non-ECDSA key")
	}

	// pki.NewSerial: 0x01 then 128 random bits.
	// Time-ordered: 6 octets of milliseconds then 104 random bits, 19
	// octets in all with no sign octet (pki.NewSerialAt).
	if sn := leaf.SerialNumber; sn.Sign() <= 0 || len(sn.Bytes()) != 19 || sn.BitLen() > 151 {
		t.Errorf("serial %x: sign %d, %d octets, %d bits; want positive, 19 octets, at most 151 bits", sn, sn.Sign(), len(sn.Bytes()), sn.BitLen())
	}
	if !bytes.Equal(leaf.RawIssuer, issuerCert.RawSubject) || leaf.SignatureAlgorithm != pki.SignatureAlgorithmFor(issuerCert.PublicKey) {
		t.Errorf("issuer %q signed with %s", leaf.Issuer, leaf.SignatureAlgorithm)
	}

	wantNB := e.clk.Now().Add(-time.Minute).Truncate(time.Second)
	wantNA := wantNB.Add(time.Duration(days) * day)
	if wantNA.After(issuerCert.NotAfter) {
		wantNA = issuerCert.NotAfter
	}
	if !leaf.NotBefore.Equal(wantNB) || !leaf.NotAfter.Equal(wantNA) {
		t.Errorf("validity %s..%s, want %s..%s", leaf.NotBefore, leaf.NotAfter, wantNB, wantNA)
	}

	if err := verify(leaf, res.Chain, e.clk.Now()); err != nil {
		t.Errorf("x509.Verify: %v", err)
	}
	if res.CAName != issuer.Name {
		t.Errorf("CAName = %q, want %q", res.CAName, issuer.Name)
	}
	if want, err := e.svc.Chain(context.Background(), issuer.Name); err != nil || !sameCerts(res.Chain, want) {
		t.Errorf("result chain differs from Chain(%s) (%v)", issuer.Name, err)
	}

	rec := res.Cert
	if rec.Serial != pki.SerialHex(leaf.SerialNumber) || rec.CAID != issuer.ID || rec.Profile != prof.Name ||
		rec.Requester != admin.Name || rec.KeyAlgorithm != fam || rec.KeyBits != bits ||
		rec.Status != inventory.StatusValid || rec.Fingerprint != pki.Fingerprint(leaf.Raw) {
		t.Errorf("record = %+v", rec)
	}
	stored, err := e.db.GetCertificate(context.Background(), rec.Serial)
	if err != nil {
		t.Fatalf("issued certificate not in the store: %v", err)
	}
	if !bytes.Equal(stored.DER, leaf.Raw) || !slices.Equal(stored.LintWarnings, rec.LintWarnings) || !slices.Equal(stored.SANs, pki.SANs(leaf)) {
		t.Errorf("stored record differs: %+v", stored)
	}
}

// TestIssueProfileMatrix issues, from a CSR, one certificate for every
// built-in profile and every key type it allows (RSA-4096 once), and checks
// that every other key type is refused.
func TestIssueProfileMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	keys := &keyCache{once: map[pki.KeyAlgorithm]func() (crypto.Signer, error){}}
	lintCert := rfcLints(t)

	// Ed25519 is allowed by no built-in profile; a custom one covers it.
	ed := &profile.Profile{
		Name: "ed25519_service", Keys: []profile.KeyRule{{Algorithm: pki.FamilyEd25519}},
		MaxValidityDays: 30, RenewBeforeDays: 7,
		KeyUsage: []string{"digital_signature"}, ExtKeyUsage: []string{"server_auth", "client_auth"},
		Names:         profile.NameRules{DNS: profile.DNSRule{Allow: true}, IP: profile.IPRule{Allow: true}, RequireSAN: true},
		SubjectFields: []string{"common_name", "organization"},
	}
	if err := e.profiles.Create(ctx, admin, ed); err != nil {
		t.Fatal(err)
	}
	profs := append(profile.Builtins(), ed)

	rsa4096 := false
	for _, prof := range profs {
		for _, alg := range pki.KeyAlgorithms() {
			allowed := prof.AllowsAlgorithm(alg) == nil
			if alg == pki.RSA4096 {
				// Slow to generate: one allowed case only.
				if !allowed || rsa4096 {
					continue
				}
				rsa4096 = true
			}
			t.Run(fmt.Sprintf("%s/%s", prof.Name, alg), func(t *testing.T) {
				t.Parallel()
				key := keys.get(t, alg)
				req := names(prof.Name)
				if prof.Name == ed.Name {
					req = names("")
				}
				// checkLeaf expects the maximum validity, which a
				// profile with a shorter default is asked for.
				days := 0
				if prof.DefaultValidityHours > 0 {
					days = prof.MaxValidityDays
				}
				res, err := e.svc.Issue(ctx, issue.Request{
					Principal: admin, CA: "issuing", Profile: prof.Name, CSR: mustCSR(t, key, req),
					ValidityDays: days, Tags: []string{"matrix", prof.Name},
				})
				if !allowed {
					var v *profile.Violation
					if !errors.As(err, &v) || v.Rule != profile.RuleKeys {
						t.Fatalf("Issue with a key %s does not allow = %v, want a keys violation", prof.Name, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				checkLeaf(t, e, res, e.inter, prof, key.Public(), prof.MaxValidityDays)
				if !slices.Equal(res.Cert.Tags, []string{"matrix", prof.Name}) {
					t.Errorf("tags = %v", res.Cert.Tags)
				}
				if res.Key != nil || res.Cert.ManagedKey != nil {
					t.Error("a CSR request returned or retained a key")
				}
				if len(res.Cert.LintWarnings) > 0 {
					t.Logf("pre-issuance lint warnings: %v", res.Cert.LintWarnings)
				}
				warnings, failures := lintCert(res.Leaf)
				if len(failures) > 0 {
					t.Errorf("issued certificate fails zlint: %v", failures)
				}
				if len(warnings) > 0 {
					t.Logf("zlint warnings on the issued certificate: %v", warnings)
				}
			})
		}
	}
}

func TestIssueValidity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	key := mustKey(t, pki.ECDSAP256)
	csr := mustCSR(t, key, names("web_server"))
	web, _ := profile.Builtin("web_server")

	for _, tt := range []struct {
		name      string
		days      int
		wantDays  int
		violation bool
	}{
		{"default is the profile maximum", 0, 365, false},
		{"shorter is honoured", 30, 30, false},
		{"one day", 1, 1, false},
		{"exactly the maximum", 365, 365, false},
		{"longer is a violation", 366, 0, true},
		{"negative is a violation", -1, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server", CSR: csr, ValidityDays: tt.days})
			if tt.violation {
				var v *profile.Violation
				if !errors.As(err, &v) || v.Rule != "max_validity_days" {
					t.Fatalf("Issue(%d days) = %v, want a max_validity_days violation", tt.days, err)
				}
				if v.Value != fmt.Sprint(tt.days) {
					t.Errorf("violation value %q, want %d", v.Value, tt.days)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLeaf(t, e, res, e.inter, web, key.Public(), tt.wantDays)
			if got := res.Leaf.NotAfter.Sub(res.Leaf.NotBefore); got != time.Duration(tt.wantDays)*day {
				t.Errorf("lifetime %s, want %d days", got, tt.wantDays)
			}
		})
	}
}

// TestIssueCappedByIssuer: a leaf never outlives its issuing CA, and an
// expired CA issues nothing.
func TestIssueCappedByIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	short := e.intermediate(t, "root", "short", pki.ECDSAP256, 30*day, 0, nil)
	shortCert := mustParse(t, short.CertDER)
	if got := shortCert.NotAfter.Sub(shortCert.NotBefore); got != 30*day {
		t.Fatalf("short CA lives %s, want 30 days", got)
	}
	key := mustKey(t, pki.ECDSAP256)
	web, _ := profile.Builtin("web_server")
	for _, days := range []int{0, 365} {
		res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "short", Profile: "web_server", CSR: mustCSR(t, key, names("web_server")), ValidityDays: days})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Leaf.NotAfter.Equal(shortCert.NotAfter) {
			t.Errorf("ValidityDays %d: NotAfter %s, want the CA's %s", days, res.Leaf.NotAfter, shortCert.NotAfter)
		}
		checkLeaf(t, e, res, short, web, key.Public(), 365)
	}

	n := e.count(t)
	e.clk.Set(shortCert.NotAfter.Add(time.Second))
	_, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "short", Profile: "web_server", CSR: mustCSR(t, key, names("web_server"))})
	if !errors.Is(err, ca.ErrNotIssuing) {
		t.Fatalf("Issue from an expired CA = %v, want ca.ErrNotIssuing", err)
	}
	if e.count(t) != n {
		t.Error("a refused request stored a certificate")
	}
}

func TestIssueRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := ca.NewManager(e.db, e.clk, slog.New(slog.DiscardHandler), 0)
	e.intermediate(t, "root", "disabled", pki.ECDSAP256, 365*day, 0, nil)
	if _, err := m.Disable(ctx, admin, "disabled"); err != nil {
		t.Fatal(err)
	}
	e.intermediate(t, "root", "deleted", pki.ECDSAP256, 365*day, 0, nil)
	if _, err := m.Disable(ctx, admin, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(ctx, admin, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateExternal(ctx, admin, &ca.Spec{
		Name: "pending", Subject: pkix.Name{CommonName: "Pending CA"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day,
	}); err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, pki.ECDSAP256)
	csr := mustCSR(t, key, names("web_server"))
	n := e.count(t)
	viewer := authz.WithRole("eve", authz.KindMachine, authz.RoleViewer, authz.Scope{})
	approver := authz.WithRole("abe", authz.KindHuman, authz.RoleApprover, authz.Scope{})
	nobody := authz.WithRole("nat", authz.KindMachine, "no_such_role", authz.Scope{})

	tests := []struct {
		name    string
		mutate  func(*issue.Request)
		wantErr error
	}{
		{"root issues no leaf", func(r *issue.Request) { r.CA = "root" }, ca.ErrNotIssuing},
		{"root by id", func(r *issue.Request) { r.CA = e.root.ID }, ca.ErrNotIssuing},
		{"disabled CA", func(r *issue.Request) { r.CA = "disabled" }, ca.ErrNotIssuing},
		{"deleted CA", func(r *issue.Request) { r.CA = "deleted" }, ca.ErrNotIssuing},
		{"pending external CA", func(r *issue.Request) { r.CA = "pending" }, ca.ErrNotIssuing},
		{"unknown CA", func(r *issue.Request) { r.CA = "nope" }, store.ErrNotFound},
		{"no CA", func(r *issue.Request) { r.CA = "" }, issue.ErrInvalid},
		{"unknown profile", func(r *issue.Request) { r.Profile = "nope" }, profile.ErrUnknown},
		{"malformed profile name", func(r *issue.Request) { r.Profile = "Web Server!" }, profile.ErrUnknown},
		{"no principal", func(r *issue.Request) { r.Principal = authz.Principal{} }, issue.ErrForbidden},
		{"viewer", func(r *issue.Request) { r.Principal = viewer }, issue.ErrForbidden},
		{"approver", func(r *issue.Request) { r.Principal = approver }, authz.ErrForbidden},
		{"unknown role", func(r *issue.Request) { r.Principal = nobody }, issue.ErrForbidden},
		{"bad tag", func(r *issue.Request) { r.Tags = []string{"a,b"} }, issue.ErrInvalid},
		{"too many tags", func(r *issue.Request) { r.Tags = slices.Repeat([]string{"t"}, 33) }, issue.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := issue.Request{Principal: admin, CA: "issuing", Profile: "web_server", CSR: csr}
			tt.mutate(&req)
			res, err := e.svc.Issue(ctx, req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Issue = %v, %v; want %v", res, err, tt.wantErr)
			}
		})
	}
	t.Cleanup(func() {
		if got := e.count(t); got != n {
			t.Errorf("refused requests stored %d certificates", got-n)
		}
	})
}

// basicConstraintsCSR asks for basicConstraints as given.
func basicConstraintsCSR(t *testing.T, key crypto.Signer, value any) *x509.CertificateRequest {
	t.Helper()
	v, err := asn1.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	req := names("web_server")
	req.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: v}}
	return mustCSR(t, key, req)
}

func TestIssueCSRContents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	key := mustKey(t, pki.ECDSAP256)
	type caTrue struct{ IsCA bool }
	type caTruePath struct {
		IsCA    bool
		PathLen int
	}

	tests := []struct {
		name    string
		csr     *x509.CertificateRequest
		wantErr error
		wantDNS []string
		wantIPs []string
		rule    string // a profile rule the request must break
	}{
		{"CA:TRUE", basicConstraintsCSR(t, key, caTrue{true}), issue.ErrInvalid, nil, nil, ""},
		{"CA:TRUE with path length", basicConstraintsCSR(t, key, caTruePath{true, 0}), issue.ErrInvalid, nil, nil, ""},
		{"CA:FALSE is ignored", basicConstraintsCSR(t, key, caTrue{false}), nil, []string{"api.example.internal", "www.example.internal"}, []string{"10.0.0.5"}, ""},
		{"host name CN becomes a DNS SAN", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Host.Example.Internal"}}), nil, []string{"host.example.internal"}, nil, ""},
		{"CN already a SAN is not repeated", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example.internal"}, DNSNames: []string{"A.example.internal"}}), nil, []string{"A.example.internal"}, nil, ""},
		{"IPv4 CN becomes an IP SAN", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "10.1.2.3"}}), nil, nil, []string{"10.1.2.3"}, ""},
		{"IPv6 CN becomes an IP SAN", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fd00::1"}, DNSNames: []string{"v6.example.internal"}}), nil, []string{"v6.example.internal"}, []string{"fd00::1"}, ""},
		{"single-label CN is not a SAN", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "localhost"}}), nil, nil, nil, profile.RuleRequireSAN},
		{"CN with a space is not a SAN", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "my host.example"}}), nil, nil, nil, profile.RuleRequireSAN},
		{"subject field outside the profile", mustCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example.internal", StreetAddress: []string{"Main St"}}}), nil, nil, nil, profile.RuleSubjectFields},
		{"wildcard not allowed", mustCSR(t, key, &x509.CertificateRequest{DNSNames: []string{"*.example.internal"}}), nil, nil, nil, profile.RuleDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "web_server", CSR: tt.csr})
			if tt.rule != "" {
				var v *profile.Violation
				if !errors.As(err, &v) || v.Rule != tt.rule {
					t.Fatalf("Issue = %v, want a %s violation", err, tt.rule)
				}
				return
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Issue = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dns := slices.Clone(res.Leaf.DNSNames)
			slices.Sort(dns)
			var ips []string
			for _, ip := range res.Leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(dns, tt.wantDNS) || !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("SANs: DNS %v IP %v; want DNS %v IP %v", dns, ips, tt.wantDNS, tt.wantIPs)
			}
			if res.Leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if res.Leaf.Subject.CommonName != tt.csr.Subject.CommonName {
				t.Errorf("CN = %q, want %q", res.Leaf.Subject.CommonName, tt.csr.Subject.CommonName)
			}
		})
	}
}

func TestIssueManagedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	retain := &profile.Profile{
		Name: "machine", Keys: []profile.KeyRule{{Algorithm: pki.FamilyECDSA, MinBits: 256}, {Algorithm: pki.FamilyEd25519}},
		MaxValidityDays: 30, RenewBeforeDays: 7,
		KeyUsage: []string{"digital_signature", "key_agreement"}, ExtKeyUsage: []string{"client_auth"},
		Names:         profile.NameRules{DNS: profile.DNSRule{Allow: true}, RequireSAN: true},
		SubjectFields: []string{"common_name"}, KeyExport: profile.KeyExportRetain,
	}
	if err := e.profiles.Create(ctx, admin, retain); err != nil {
		t.Fatal(err)
	}
	web, _ := profile.Builtin("web_server")
	sub := pkix.Name{CommonName: "m1.example.internal"}

	tests := []struct {
		name     string
		prof     *profile.Profile
		alg      pki.KeyAlgorithm
		retainIt bool // Request.RetainKey
		wantAlg  pki.KeyAlgorithm
		retained bool
		rule     string
	}{
		{"once, default key", web, "", false, pki.ECDSAP256, false, ""},
		{"once, RSA", web, pki.RSA2048, false, pki.RSA2048, false, ""},
		{"once, P-384", web, pki.ECDSAP384, false, pki.ECDSAP384, false, ""},
		{"once, key type not allowed", web, pki.Ed25519, false, "", false, profile.RuleKeys},
		{"once, unknown key type", web, "rsa-1024", false, "", false, profile.RuleKeys},
		{"once, server asks to retain", web, "", true, pki.ECDSAP256, true, ""},
		{"retain, default key", retain, "", false, pki.ECDSAP256, true, ""},
		{"retain, Ed25519", retain, pki.Ed25519, false, pki.Ed25519, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := e.svc.Issue(ctx, issue.Request{
				Principal: admin, CA: "issuing", Profile: tt.prof.Name,
				KeyAlgorithm: tt.alg, Subject: sub, RetainKey: tt.retainIt,
			})
			if tt.rule != "" {
				var v *profile.Violation
				if !errors.As(err, &v) || v.Rule != tt.rule {
					t.Fatalf("Issue = %v, want a %s violation", err, tt.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Key == nil {
				t.Fatal("no managed key returned")
			}
			if got, err := pki.AlgorithmOf(res.Key.Public()); err != nil || got != tt.wantAlg {
				t.Fatalf("managed key is %s (%v), want %s", got, err, tt.wantAlg)
			}
			checkLeaf(t, e, res, e.inter, tt.prof, res.Key.Public(), tt.prof.MaxValidityDays)
			// The private key signs for the certificate's public key.
			msg := []byte("proof of possession")
			digest, opts := msg, crypto.SignerOpts(crypto.Hash(0))
			if tt.wantAlg != pki.Ed25519 {
				h := crypto.SHA256.New()
				h.Write(msg)
				digest, opts = h.Sum(nil), crypto.SHA256
			}
			sig, err := res.Key.Sign(rand.Reader, digest, opts)
			if err != nil {
				t.Fatal(err)
			}
			sigAlg := map[pki.KeyAlgorithm]x509.SignatureAlgorithm{
				pki.ECDSAP256: x509.ECDSAWithSHA256, pki.ECDSAP384: x509.ECDSAWithSHA256,
				pki.RSA2048: x509.SHA256WithRSA, pki.Ed25519: x509.PureEd25519,
			}[tt.wantAlg]
			if err := res.Leaf.CheckSignature(sigAlg, msg, sig); err != nil {
				t.Errorf("managed key does not match the certificate: %v", err)
			}

			stored, err := e.db.GetCertificate(ctx, res.Cert.Serial)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.retained {
				if res.Cert.ManagedKey != nil || stored.ManagedKey != nil {
					t.Fatal("key_export once retained the key")
				}
				return
			}
			if res.Cert.ManagedKey == nil || stored.ManagedKey == nil {
				t.Fatal("retained key not stored")
			}
			// The stored ref unwraps, under a fresh provider on the same KEK,
			// to the very key handed out.
			kp, err := software.New(e.kek, nil)
			if err != nil {
				t.Fatal(err)
			}
			back, err := kp.Signer(ctx, *stored.ManagedKey, keys.ManagedPurpose(stored.Serial))
			if err != nil {
				t.Fatalf("unwrap retained key: %v", err)
			}
			if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(res.Key.Public()) {
				t.Error("retained key differs from the key handed out")
			}
			if stored.ManagedKey.Algorithm != tt.wantAlg {
				t.Errorf("retained ref algorithm %s, want %s", stored.ManagedKey.Algorithm, tt.wantAlg)
			}
		})
	}
}

func TestIssueRequireApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	p, _ := profile.Builtin("web_server")
	p.Name, p.RequireApproval, p.Builtin = "web_server_approved", true, false
	if err := e.profiles.Create(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, pki.ECDSAP256)
	n := e.count(t)

	// A CSR request is held: no certificate, a pending request instead.
	res, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: p.Name, CSR: mustCSR(t, key, names("web_server"))})
	if err != nil {
		t.Fatalf("Issue under a require_approval profile: %v", err)
	}
	if res.Pending == nil || res.Cert != nil || res.Leaf != nil || res.Key != nil {
		t.Fatalf("Issue = %+v; want only Pending set", res)
	}
	if res.Pending.Status != issue.StatusPending || res.Pending.Profile != p.Name || res.Pending.CA != "issuing" || res.Pending.Requester != admin.Name {
		t.Errorf("pending request = %+v", res.Pending)
	}

	// A server-generated key is never held for approval.
	res, err = e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: p.Name, Subject: pkix.Name{CommonName: "a.example.internal"}})
	if !errors.Is(err, issue.ErrInvalid) {
		t.Fatalf("managed-key Issue = %+v, %v; want ErrInvalid", res, err)
	}
	if got := e.count(t); got != n {
		t.Errorf("approval-required profile stored %d certificates", got-n)
	}
}

// TestIssueLintBlocks: requests every profile accepts but RFC 5280 forbids
// are stopped by the pre-issuance linter, and nothing is stored.
func TestIssueLintBlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name string
		req  issue.Request
		lint string
	}{
		{
			// code_signing requires no SAN and no subject field.
			"empty subject without SAN",
			issue.Request{Profile: "code_signing"},
			"e_subject_empty_without_san",
		},
		{
			"common name over 64 characters",
			issue.Request{Profile: "web_server", Subject: pkix.Name{CommonName: strings.Repeat("a", 65)}, DNSNames: []string{"a.example.internal"}},
			"e_subject_common_name_max_length",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sequential: each case counts the store.
			n := e.count(t)
			req := tt.req
			req.Principal, req.CA = admin, "issuing"
			res, err := e.svc.Issue(ctx, req)
			var le *lint.Error
			if !errors.As(err, &le) {
				t.Fatalf("Issue = %+v, %v; want a *lint.Error", res, err)
			}
			if !slices.ContainsFunc(le.Lints, func(f lint.Finding) bool { return f.Name == tt.lint }) {
				t.Errorf("lint findings %v, want %s", le.Lints, tt.lint)
			}
			if got := e.count(t); got != n {
				t.Errorf("a certificate that failed lint was stored")
			}
		})
	}
	// The same subject with a SAN is fine: the lint, not the request shape,
	// refused the first one.
	if _, err := e.svc.Issue(ctx, issue.Request{Principal: admin, CA: "issuing", Profile: "code_signing", EmailAddresses: []string{"release@example.com"}}); err != nil {
		t.Fatalf("empty subject with an email SAN: %v", err)
	}
}

func TestIssueConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	csr := mustCSR(t, mustKey(t, pki.ECDSAP256), names("internal_service"))
	const n = 64
	results := make([]*issue.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := issue.Request{Principal: admin, CA: "issuing", Profile: "internal_service", CSR: csr}
			if i%4 == 0 {
				// Some managed-key requests in the mix.
				req = issue.Request{Principal: admin, CA: e.inter.ID, Profile: "internal_service",
					Subject: pkix.Name{CommonName: fmt.Sprintf("w%d.example.internal", i)}}
			}
			results[i], errs[i] = e.svc.Issue(ctx, req)
		})
	}
	wg.Wait()
	serials := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		s := results[i].Cert.Serial
		if serials[s] {
			t.Fatalf("serial %s issued twice", s)
		}
		serials[s] = true
	}
	certs, err := e.db.ListCertificates(ctx, inventory.Filter{CAID: e.inter.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != n {
		t.Fatalf("store holds %d certificates, want %d", len(certs), n)
	}
	for _, c := range certs {
		if !serials[c.Serial] {
			t.Errorf("stored serial %s was not returned", c.Serial)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kp, err := software.New(newKEK(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	linter, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cat := profile.NewCatalog(db, nil)
	good := issue.Config{PublicHTTPBase: base, Clock: clock.NewFake(start), Log: slog.New(slog.DiscardHandler)}

	tests := []struct {
		name   string
		mutate func(*issue.Config)
		ok     bool
	}{
		{"good", func(*issue.Config) {}, true},
		{"with path", func(c *issue.Config) { c.PublicHTTPBase = base + "/pki" }, true},
		{"empty base", func(c *issue.Config) { c.PublicHTTPBase = "" }, false},
		{"https base", func(c *issue.Config) { c.PublicHTTPBase = "https://pki.example.internal" }, false},
		{"relative base", func(c *issue.Config) { c.PublicHTTPBase = "pki.example.internal" }, false},
		{"base without host", func(c *issue.Config) { c.PublicHTTPBase = "http://:8080" }, false},
		{"no clock", func(c *issue.Config) { c.Clock = nil }, false},
		{"no logger", func(c *issue.Config) { c.Log = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tt.mutate(&cfg)
			svc, err := issue.New(cfg, db, cat, kp, linter)
			if tt.ok != (err == nil) {
				t.Fatalf("New = %v, %v; want ok=%v", svc, err, tt.ok)
			}
		})
	}
	if _, err := issue.New(good, nil, cat, kp, linter); err == nil {
		t.Error("New accepted a nil store")
	}
	if _, err := issue.New(good, db, cat, nil, linter); err == nil {
		t.Error("New accepted a nil key provider")
	}
}

func TestSplitChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	outside := newOutsideCA(t, start)
	ext := outside.sign(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Ext"}}, mustKey(t, pki.ECDSAP256).Public(), start, nil)
	tests := []struct {
		name      string
		chain     []*x509.Certificate
		wantInter []*x509.Certificate
		wantRoot  *x509.Certificate
	}{
		{"intermediate and root", []*x509.Certificate{e.interCert, e.rootCert}, []*x509.Certificate{e.interCert}, e.rootCert},
		{"root only", []*x509.Certificate{e.rootCert}, []*x509.Certificate{}, e.rootCert},
		{"external CA without its chain", []*x509.Certificate{ext}, []*x509.Certificate{ext}, nil},
		{"external CA and its root", []*x509.Certificate{ext, outside.cert}, []*x509.Certificate{ext}, outside.cert},
		{"empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inter, root := issue.SplitChain(tt.chain)
			if !sameCerts(inter, tt.wantInter) || root != tt.wantRoot {
				t.Errorf("SplitChain = %d intermediates, root %v; want %d, %v", len(inter), root != nil, len(tt.wantInter), tt.wantRoot != nil)
			}
		})
	}
}
