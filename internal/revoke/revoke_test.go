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
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

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
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

const day = 24 * time.Hour

var (
	start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin = authz.WithRole("alice", authz.KindHuman, authz.RoleAdmin, authz.Scope{})
	// machine issues the test certificates: server-generated keys go to
	// machine principals only.
	machine = authz.WithRole("deployer", authz.KindMachine, authz.RoleIssuer, authz.Scope{})

	oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidOCSPNoCheck    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
)

// env is a server's revocation path on real parts: SQLite store, software
// keys, zlint, the issuance service to make a root and an issuing
// intermediate (both P-256) and leaves, and a fake clock.
type env struct {
	db     *store.DB
	clk    *clock.Fake
	kek    []byte
	kp     *software.Provider
	keys   envKeys
	linter *lint.Linter
	issuer *issue.Service
	cfg    revoke.Config
	svc    *revoke.Service

	root, inter         *ca.CA
	rootCert, interCert *x509.Certificate
}

// envKeys says where an env's keys are: by default all software keys
// under one KEK. With route set, the services get route(software
// provider) instead (a keys.Router holding a token too), and new CAs'
// keys go to the provider caProvider names.
type envKeys struct {
	route      func(t *testing.T, soft *software.Provider) keys.Provider
	caProvider string
}

// provider returns the key provider the services use over soft.
func (k envKeys) provider(t *testing.T, soft *software.Provider) keys.Provider {
	if k.route == nil {
		return soft
	}
	return k.route(t, soft)
}

// newEnv builds the environment; mutate may adjust the revocation config
// before the service is created.
func newEnv(t *testing.T, mutate func(*revoke.Config)) *env {
	t.Helper()
	return newEnvKeys(t, envKeys{}, mutate)
}

// newEnvKeys is newEnv with the keys where ek says.
func newEnvKeys(t *testing.T, ek envKeys, mutate func(*revoke.Config)) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/db", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db, clk: clock.NewFake(start), kek: make([]byte, software.KEKSize), keys: ek}
	if _, err := rand.Read(e.kek); err != nil {
		t.Fatal(err)
	}
	if e.kp, err = software.New(e.kek, nil); err != nil {
		t.Fatal(err)
	}
	if e.linter, err = lint.New(lint.Options{}); err != nil {
		t.Fatal(err)
	}
	e.issuer, err = issue.New(issue.Config{PublicHTTPBase: "http://pki.example.internal:8080", Clock: e.clk, Log: log, CAKeyProvider: ek.caProvider},
		db, profile.NewCatalog(db, e.clk.Now), ek.provider(t, e.kp), e.linter)
	if err != nil {
		t.Fatal(err)
	}
	e.root, err = e.issuer.CreateRoot(ctx, admin, &ca.Spec{
		Name: "root", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test Root CA"},
		KeyAlg: pki.ECDSAP256, Validity: 10 * 365 * day, MaxPathLen: 1,
	})
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	e.inter, err = e.issuer.CreateIntermediate(ctx, admin, "root", &ca.Spec{
		Name: "issuing", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test Issuing CA"},
		KeyAlg: pki.ECDSAP256, Validity: 5 * 365 * day, MaxPathLen: 0,
	})
	if err != nil {
		t.Fatalf("CreateIntermediate: %v", err)
	}
	e.rootCert = mustParse(t, e.root.CertDER)
	e.interCert = mustParse(t, e.inter.CertDER)
	e.cfg = revoke.Config{Clock: e.clk, Log: log}
	if mutate != nil {
		mutate(&e.cfg)
	}
	e.svc = e.restart(t)
	return e
}

// restart returns a new revocation service on the same database with a new
// key provider under the same KEK: what a server restart sees.
func (e *env) restart(t *testing.T) *revoke.Service {
	t.Helper()
	kp, err := software.New(e.kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := revoke.New(e.cfg, e.db, e.keys.provider(t, kp), e.linter)
	if err != nil {
		t.Fatalf("revoke.New: %v", err)
	}
	return svc
}

func mustParse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leafOpts shapes one issued leaf.
type leafOpts struct {
	profile string   // "web_server" when empty
	dns     []string // "<random>.example.com" when empty
	key     crypto.Signer
	days    int
}

// leaf issues a certificate from the intermediate: from a CSR when o.key is
// set, with a managed P-256 key otherwise.
func (e *env) leaf(t *testing.T, o leafOpts) *x509.Certificate {
	t.Helper()
	if o.profile == "" {
		o.profile = "web_server"
	}
	if len(o.dns) == 0 {
		o.dns = []string{fmt.Sprintf("h%x.example.com", mrand.Uint64())}
	}
	req := issue.Request{Principal: machine, CA: "issuing", Profile: o.profile, ValidityDays: o.days}
	if o.key != nil {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: o.dns}, o.key)
		if err != nil {
			t.Fatal(err)
		}
		if req.CSR, err = pki.ParseCSR(der); err != nil {
			t.Fatal(err)
		}
	} else {
		req.KeyAlgorithm, req.DNSNames = pki.ECDSAP256, o.dns
	}
	res, err := e.issuer.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("Issue %s %v: %v", o.profile, o.dns, err)
	}
	return res.Leaf
}

func (e *env) leaves(t *testing.T, n int, o leafOpts) []*x509.Certificate {
	t.Helper()
	out := make([]*x509.Certificate, n)
	for i := range out {
		out[i] = e.leaf(t, o)
	}
	return out
}

func serialOf(c *x509.Certificate) string { return pki.SerialHex(c.SerialNumber) }

// ocspReq is an OCSP request made by x/crypto/ocsp, SHA-1 CertID unless h
// says otherwise.
func ocspReq(t testing.TB, cert, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	var opts *xocsp.RequestOptions
	if h != 0 {
		opts = &xocsp.RequestOptions{Hash: h}
	}
	der, err := xocsp.CreateRequest(cert, issuer, opts)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ask sends an OCSP request for cert to the CA caID and verifies the answer
// as a relying party does, against issuer.
func ask(t testing.TB, svc *revoke.Service, caID string, cert, issuer *x509.Certificate, h crypto.Hash) (*xocsp.Response, revoke.OCSPResponse) {
	t.Helper()
	resp := svc.Respond(context.Background(), caID, ocspReq(t, cert, issuer, h))
	parsed, err := xocsp.ParseResponseForCert(resp.DER, cert, issuer)
	if err != nil {
		t.Fatalf("OCSP response for serial %s does not verify: %v", serialOf(cert), err)
	}
	if !resp.Cacheable || resp.ETag == "" {
		t.Errorf("successful response: Cacheable %v, ETag %q", resp.Cacheable, resp.ETag)
	}
	if !parsed.ThisUpdate.Equal(resp.ThisUpdate) || !parsed.NextUpdate.Equal(resp.NextUpdate) {
		t.Errorf("response times %s..%s, OCSPResponse says %s..%s", parsed.ThisUpdate, parsed.NextUpdate, resp.ThisUpdate, resp.NextUpdate)
	}
	return parsed, resp
}

// wantStatus asks and checks the certificate status.
func wantStatus(t testing.TB, svc *revoke.Service, caID string, cert, issuer *x509.Certificate, want int) *xocsp.Response {
	t.Helper()
	r, _ := ask(t, svc, caID, cert, issuer, 0)
	if r.Status != want {
		t.Errorf("OCSP status of %s = %s, want %s", serialOf(cert), statusName(r.Status), statusName(want))
	}
	return r
}

func statusName(s int) string {
	switch s {
	case xocsp.Good:
		return "good"
	case xocsp.Revoked:
		return "revoked"
	case xocsp.Unknown:
		return "unknown"
	}
	return fmt.Sprintf("status(%d)", s)
}

// wantError checks that der is an unsigned OCSP error response with status.
func wantError(t *testing.T, resp revoke.OCSPResponse, status xocsp.ResponseStatus) {
	t.Helper()
	_, err := xocsp.ParseResponse(resp.DER, nil)
	var re xocsp.ResponseError
	if !errors.As(err, &re) || re.Status != status {
		t.Errorf("response = %v, want the error status %s", err, status)
	}
	if resp.Cacheable || resp.ETag != "" {
		t.Errorf("error response: Cacheable %v, ETag %q; want neither", resp.Cacheable, resp.ETag)
	}
}

// parseCRL parses and verifies a CRL as a relying party does.
func parseCRL(t testing.TB, c *revoke.CRL, issuer *x509.Certificate) *x509.RevocationList {
	t.Helper()
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatalf("ParseRevocationList: %v", err)
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		t.Errorf("CRL issuer %s, want %s", rl.Issuer, issuer.Subject)
	}
	if rl.Number == nil || rl.Number.Int64() != c.Number {
		t.Errorf("CRL number %v, CRL.Number says %d", rl.Number, c.Number)
	}
	if !rl.ThisUpdate.Equal(c.ThisUpdate) || !rl.NextUpdate.Equal(c.NextUpdate) {
		t.Errorf("CRL times %s..%s, CRL says %s..%s", rl.ThisUpdate, rl.NextUpdate, c.ThisUpdate, c.NextUpdate)
	}
	if len(rl.RevokedCertificateEntries) != c.Entries {
		t.Errorf("CRL has %d entries, CRL.Entries says %d", len(rl.RevokedCertificateEntries), c.Entries)
	}
	return rl
}

// crlEntries maps serial to entry.
func crlEntries(rl *x509.RevocationList) map[string]x509.RevocationListEntry {
	out := map[string]x509.RevocationListEntry{}
	for _, e := range rl.RevokedCertificateEntries {
		out[pki.SerialHex(e.SerialNumber)] = e
	}
	return out
}

func invalidityDate(t testing.TB, e x509.RevocationListEntry) time.Time {
	t.Helper()
	for _, ext := range e.Extensions {
		if ext.Id.Equal(oidInvalidityDate) {
			var d time.Time
			if rest, err := asn1.UnmarshalWithParams(ext.Value, &d, "generalized"); err != nil || len(rest) > 0 {
				t.Fatalf("invalidityDate extension: %v", err)
			}
			return d
		}
	}
	return time.Time{}
}

func (e *env) regenerate(t testing.TB, caID string) *revoke.CRL {
	t.Helper()
	c, err := e.svc.RegenerateCRL(context.Background(), caID)
	if err != nil {
		t.Fatalf("RegenerateCRL: %v", err)
	}
	return c
}

func (e *env) revoke(t testing.TB, cert *x509.Certificate, reason pki.Reason) *inventory.Revocation {
	t.Helper()
	rec, created, err := e.svc.Revoke(context.Background(), revoke.Request{Principal: admin, Serial: serialOf(cert), Reason: reason})
	if err != nil || !created {
		t.Fatalf("Revoke %s = created %v, %v", serialOf(cert), created, err)
	}
	return rec
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		name string
		cfg  revoke.Config
	}{
		{"no clock", revoke.Config{Log: log}},
		{"no logger", revoke.Config{Clock: e.clk}},
		{"short CRL lifetime", revoke.Config{Clock: e.clk, Log: log, CRLLifetime: time.Minute}},
		{"short OCSP lifetime", revoke.Config{Clock: e.clk, Log: log, OCSPLifetime: time.Minute}},
		{"responder shorter than two responses", revoke.Config{Clock: e.clk, Log: log, OCSPLifetime: day, ResponderLifetime: day}},
	} {
		if _, err := revoke.New(tt.cfg, e.db, e.kp, e.linter); err == nil {
			t.Errorf("%s: New accepted the config", tt.name)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaf := e.leaf(t, leafOpts{})
	other := e.leaf(t, leafOpts{})
	serial := serialOf(leaf)

	// Times are recorded to the second.
	e.clk.Advance(90*time.Minute + 700*time.Millisecond)
	now := e.clk.Now().Truncate(time.Second)
	invalidity := now.Add(-2*time.Hour + 300*time.Millisecond)

	// A differently spelled serial names the same certificate.
	spelled := "0x" + strings.ToUpper(serial)
	rec, created, err := e.svc.Revoke(ctx, revoke.Request{Principal: admin, Serial: spelled, Reason: pki.ReasonKeyCompromise, InvalidityDate: invalidity})
	if err != nil || !created {
		t.Fatalf("Revoke = created %v, %v; want created", created, err)
	}
	want := inventory.Revocation{
		Serial: serial, CAID: e.inter.ID, RevokedAt: now, Reason: pki.ReasonKeyCompromise,
		InvalidityDate: invalidity.Truncate(time.Second), RevokedBy: "alice", NotAfter: leaf.NotAfter.UTC(),
	}
	if !sameRevocation(rec, &want) {
		t.Errorf("Revoke = %+v, want %+v", rec, want)
	}
	stored, err := e.db.GetRevocation(ctx, serial)
	if err != nil || !sameRevocation(stored, &want) {
		t.Errorf("stored revocation = %+v, %v; want %+v", stored, err, want)
	}
	if c, err := e.db.GetCertificate(ctx, serial); err != nil || c.Status != inventory.StatusRevoked {
		t.Errorf("certificate status = %v, %v; want revoked", c, err)
	}

	// Revocation is permanent: a second request, later, by someone else,
	// with another reason, changes nothing.
	e.clk.Advance(time.Hour)
	again, created, err := e.svc.Revoke(ctx, revoke.Request{Principal: authz.WithRole("bob", authz.KindHuman, authz.RoleAdmin, authz.Scope{}), Serial: serial, Reason: pki.ReasonSuperseded})
	if err != nil || created {
		t.Fatalf("second Revoke = created %v, %v; want the first record, not created", created, err)
	}
	if !sameRevocation(again, &want) {
		t.Errorf("second Revoke = %+v, want the first record %+v", again, want)
	}
	if stored, err := e.db.GetRevocation(ctx, serial); err != nil || !sameRevocation(stored, &want) {
		t.Errorf("stored revocation after the second Revoke = %+v, %v; want %+v", stored, err, want)
	}

	unknown, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		req  revoke.Request
		want error
	}{
		{"unknown serial", revoke.Request{Principal: admin, Serial: pki.SerialHex(unknown)}, store.ErrNotFound},
		{"certificateHold", revoke.Request{Principal: admin, Serial: serialOf(other), Reason: pki.Reason(6)}, revoke.ErrInvalid},
		{"removeFromCRL", revoke.Request{Principal: admin, Serial: serialOf(other), Reason: pki.Reason(8)}, revoke.ErrInvalid},
		{"reason 42", revoke.Request{Principal: admin, Serial: serialOf(other), Reason: pki.Reason(42)}, revoke.ErrInvalid},
		{"negative reason", revoke.Request{Principal: admin, Serial: serialOf(other), Reason: pki.Reason(-1)}, revoke.ErrInvalid},
		{"future invalidity date", revoke.Request{Principal: admin, Serial: serialOf(other), Reason: pki.ReasonKeyCompromise, InvalidityDate: e.clk.Now().Add(time.Hour)}, revoke.ErrInvalid},
		{"non-admin", revoke.Request{Principal: authz.WithRole("mallory", authz.KindHuman, authz.RoleViewer, authz.Scope{}), Serial: serialOf(other)}, revoke.ErrForbidden},
		{"no principal", revoke.Request{Serial: serialOf(other)}, revoke.ErrForbidden},
		{"malformed serial", revoke.Request{Principal: admin, Serial: "not-hex"}, revoke.ErrInvalid},
		{"zero serial", revoke.Request{Principal: admin, Serial: "00"}, revoke.ErrInvalid},
		{"empty serial", revoke.Request{Principal: admin, Serial: ""}, revoke.ErrInvalid},
		{"overlong serial", revoke.Request{Principal: admin, Serial: strings.Repeat("ab", 33)}, revoke.ErrInvalid},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			rec, created, err := e.svc.Revoke(ctx, tt.req)
			if !errors.Is(err, tt.want) || rec != nil || created {
				t.Errorf("Revoke = %v, %v, %v; want %v", rec, created, err, tt.want)
			}
		})
	}
	// Nothing of the refused requests reached the store.
	if r, err := e.db.GetRevocation(ctx, serialOf(other)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRevocation of the untouched certificate = %+v, %v; want not found", r, err)
	}
	if c, err := e.db.GetCertificate(ctx, serialOf(other)); err != nil || c.Status != inventory.StatusValid {
		t.Errorf("untouched certificate = %v, %v; want valid", c, err)
	}
	wantStatus(t, e.svc, e.inter.ID, other, e.interCert, xocsp.Good)
	rl := parseCRL(t, e.regenerate(t, e.inter.ID), e.interCert)
	if got := slices.Sorted(maps.Keys(crlEntries(rl))); !slices.Equal(got, []string{serial}) {
		t.Errorf("CRL lists %v, want only %s", got, serial)
	}
}

func sameRevocation(a, b *inventory.Revocation) bool {
	return a != nil && b != nil && a.Serial == b.Serial && a.CAID == b.CAID && a.RevokedAt.Equal(b.RevokedAt) &&
		a.Reason == b.Reason && a.InvalidityDate.Equal(b.InvalidityDate) && a.RevokedBy == b.RevokedBy &&
		a.NotAfter.Equal(b.NotAfter) && a.CA == b.CA
}

func TestOCSPAfterRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaf := e.leaf(t, leafOpts{})
	leaf256 := e.leaf(t, leafOpts{})

	// Prime the cache: good answers, cached, for both hashes.
	for i := 0; i < 2; i++ {
		wantStatus(t, e.svc, e.inter.ID, leaf, e.interCert, xocsp.Good)
		if r, _ := ask(t, e.svc, e.inter.ID, leaf256, e.interCert, crypto.SHA256); r.Status != xocsp.Good {
			t.Fatalf("SHA-256 request before revocation: %s, want good", statusName(r.Status))
		}
	}

	e.clk.Advance(time.Minute)
	rec := e.revoke(t, leaf, pki.ReasonKeyCompromise)
	rec256 := e.revoke(t, leaf256, pki.ReasonAffiliationChanged)

	// No Run, no Presign: the next request already answers revoked.
	r := wantStatus(t, e.svc, e.inter.ID, leaf, e.interCert, xocsp.Revoked)
	if r.RevocationReason != xocsp.KeyCompromise || !r.RevokedAt.Equal(rec.RevokedAt) {
		t.Errorf("revoked response: reason %d at %s, want %d at %s", r.RevocationReason, r.RevokedAt, xocsp.KeyCompromise, rec.RevokedAt)
	}
	if !r.ThisUpdate.Equal(e.clk.Now()) {
		t.Errorf("revoked response ThisUpdate %s, want the revocation time %s", r.ThisUpdate, e.clk.Now())
	}
	r, _ = ask(t, e.svc, e.inter.ID, leaf256, e.interCert, crypto.SHA256)
	if r.Status != xocsp.Revoked || r.RevocationReason != xocsp.AffiliationChanged || !r.RevokedAt.Equal(rec256.RevokedAt) {
		t.Errorf("SHA-256 request after revocation: %s reason %d at %s, want revoked reason %d at %s",
			statusName(r.Status), r.RevocationReason, r.RevokedAt, xocsp.AffiliationChanged, rec256.RevokedAt)
	}
	// A SHA-1 request for the same certificate agrees.
	r = wantStatus(t, e.svc, e.inter.ID, leaf256, e.interCert, xocsp.Revoked)
	if r.RevocationReason != xocsp.AffiliationChanged {
		t.Errorf("SHA-1 request after revocation: reason %d", r.RevocationReason)
	}

	// A serial nobody issued is unknown, with either hash.
	n, err := pki.NewSerial(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger := &x509.Certificate{SerialNumber: n}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		if r, _ := ask(t, e.svc, e.inter.ID, stranger, e.interCert, h); r.Status != xocsp.Unknown {
			t.Errorf("unknown serial (%v): %s, want unknown", h, statusName(r.Status))
		}
	}
	// The root did not issue the leaf: asked properly, it says unknown.
	if r, _ := ask(t, e.svc, e.root.ID, &x509.Certificate{SerialNumber: leaf.SerialNumber}, e.rootCert, 0); r.Status != xocsp.Unknown {
		t.Errorf("root asked about the intermediate's leaf: %s, want unknown", statusName(r.Status))
	}

	t.Run("errors", func(t *testing.T) {
		wantError(t, e.svc.Respond(ctx, e.inter.ID, []byte("garbage")), xocsp.Malformed)
		wantError(t, e.svc.Respond(ctx, e.inter.ID, nil), xocsp.Malformed)
		// A CertID naming the root sent to the intermediate.
		wantError(t, e.svc.Respond(ctx, e.inter.ID, ocspReq(t, leaf, e.rootCert, 0)), xocsp.Unauthorized)
		wantError(t, e.svc.Respond(ctx, e.inter.ID, ocspReq(t, leaf, e.rootCert, crypto.SHA256)), xocsp.Unauthorized)
		// And the other way round.
		wantError(t, e.svc.Respond(ctx, e.root.ID, ocspReq(t, leaf, e.interCert, 0)), xocsp.Unauthorized)
		// An unknown CA, and a CA named rather than identified.
		wantError(t, e.svc.Respond(ctx, "no-such-ca", ocspReq(t, leaf, e.interCert, 0)), xocsp.Unauthorized)
		wantError(t, e.svc.Respond(ctx, "issuing", ocspReq(t, leaf, e.interCert, 0)), xocsp.Unauthorized)
	})
}

func TestOCSPCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaves := e.leaves(t, 3, leafOpts{})
	signed, err := e.svc.Presign(ctx, e.inter.ID)
	if err != nil || signed != len(leaves) {
		t.Fatalf("Presign = %d, %v; want %d signed", signed, err, len(leaves))
	}
	presigned := e.clk.Now()

	// A minute later, the pre-signed response is served as it is.
	e.clk.Advance(time.Minute)
	_, first := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	_, second := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	if !bytes.Equal(first.DER, second.DER) || first.ETag != second.ETag {
		t.Errorf("two requests got different responses (ETag %s, %s): not served from the cache", first.ETag, second.ETag)
	}
	if !first.ThisUpdate.Equal(presigned) {
		t.Errorf("ThisUpdate %s, want the pre-signing time %s", first.ThisUpdate, presigned)
	}
	// A second pass finds everything fresh.
	if signed, err := e.svc.Presign(ctx, e.inter.ID); err != nil || signed != 0 {
		t.Errorf("second Presign = %d, %v; want nothing to sign", signed, err)
	}
	_, third := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	if !bytes.Equal(first.DER, third.DER) {
		t.Error("a pass over fresh responses replaced them")
	}

	// Up to half the lifetime the cached response stands; past it, a
	// request gets a newly signed one, which is cached in turn.
	e.clk.Set(presigned.Add(revoke.DefaultOCSPLifetime/2 - time.Second))
	if _, r := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0); !bytes.Equal(r.DER, first.DER) {
		t.Error("response replaced before half its lifetime")
	}
	e.clk.Set(presigned.Add(revoke.DefaultOCSPLifetime/2 + time.Second))
	p, renewed := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	if bytes.Equal(renewed.DER, first.DER) || renewed.ETag == first.ETag {
		t.Error("stale response served again")
	}
	if !p.ThisUpdate.Equal(e.clk.Now()) || !p.ThisUpdate.After(first.ThisUpdate) {
		t.Errorf("renewed ThisUpdate %s, want now %s", p.ThisUpdate, e.clk.Now())
	}
	if p.Status != xocsp.Good {
		t.Errorf("renewed status %s", statusName(p.Status))
	}
	if _, again := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0); !bytes.Equal(again.DER, renewed.DER) || again.ETag != renewed.ETag {
		t.Error("renewed response not cached")
	}

	// Requests with another hash are signed once and then cached too.
	_, a := ask(t, e.svc, e.inter.ID, leaves[1], e.interCert, crypto.SHA256)
	_, b := ask(t, e.svc, e.inter.ID, leaves[1], e.interCert, crypto.SHA256)
	if !bytes.Equal(a.DER, b.DER) {
		t.Error("SHA-256 responses not cached")
	}
}

func TestOCSPCacheBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(c *revoke.Config) { c.OCSPCacheEntries = 2 })
	leaves := e.leaves(t, 4, leafOpts{})
	if _, err := e.svc.Presign(ctx, e.inter.ID); err != nil {
		t.Fatal(err)
	}
	// Every certificate is answered, cached or not.
	for _, l := range leaves {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Good)
	}
	// A revocation with a full cache still shows at once.
	e.revoke(t, leaves[3], pki.ReasonSuperseded)
	e.revoke(t, leaves[0], pki.ReasonSuperseded)
	for _, l := range []*x509.Certificate{leaves[0], leaves[3]} {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Revoked)
	}
	wantStatus(t, e.svc, e.inter.ID, leaves[1], e.interCert, xocsp.Good)
}

// TestPresignEvictsExpired: a pass drops the responses of expired
// certificates, so that they do not hold places in a bounded cache.
func TestPresignEvictsExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(c *revoke.Config) { c.OCSPCacheEntries = 2 })
	short := e.leaves(t, 2, leafOpts{days: 1})
	if n, err := e.svc.Presign(ctx, e.inter.ID); err != nil || n != 2 {
		t.Fatalf("Presign = %d, %v", n, err)
	}
	long := e.leaf(t, leafOpts{})
	e.clk.Set(short[0].NotAfter.Add(time.Hour))
	if n, err := e.svc.Presign(ctx, e.inter.ID); err != nil || n != 1 {
		t.Fatalf("Presign after expiry = %d, %v; want the one unexpired certificate signed", n, err)
	}
	_, a := ask(t, e.svc, e.inter.ID, long, e.interCert, 0)
	_, b := ask(t, e.svc, e.inter.ID, long, e.interCert, 0)
	if !bytes.Equal(a.DER, b.DER) {
		t.Error("the unexpired certificate's response is not cached: expired ones still fill the cache")
	}
}

func TestCRL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaves := e.leaves(t, 4, leafOpts{})
	short := e.leaf(t, leafOpts{days: 1})

	first := e.regenerate(t, e.inter.ID)
	if rl := parseCRL(t, first, e.interCert); len(rl.RevokedCertificateEntries) != 0 {
		t.Errorf("CRL before revocations lists %d entries", len(rl.RevokedCertificateEntries))
	}
	if !first.ThisUpdate.Equal(start) || !first.NextUpdate.Equal(start.Add(revoke.DefaultCRLLifetime)) {
		t.Errorf("CRL times %s..%s, want %s..+%s", first.ThisUpdate, first.NextUpdate, start, revoke.DefaultCRLLifetime)
	}

	e.clk.Advance(time.Hour)
	type want struct {
		reason     pki.Reason
		at         time.Time
		invalidity time.Time
	}
	wants := map[string]want{}
	revokeAt := func(c *x509.Certificate, reason pki.Reason, invalidity time.Time) {
		t.Helper()
		rec, _, err := e.svc.Revoke(ctx, revoke.Request{Principal: admin, Serial: serialOf(c), Reason: reason, InvalidityDate: invalidity})
		if err != nil {
			t.Fatal(err)
		}
		wants[rec.Serial] = want{reason, rec.RevokedAt, invalidity}
		e.clk.Advance(time.Minute)
	}
	revokeAt(leaves[0], pki.ReasonKeyCompromise, start.Add(-day))
	revokeAt(leaves[1], pki.ReasonUnspecified, time.Time{})
	revokeAt(leaves[2], pki.ReasonCessationOfOperation, time.Time{})
	revokeAt(short, pki.ReasonSuperseded, time.Time{})

	check := func(c *revoke.CRL, wants map[string]want) {
		t.Helper()
		rl := parseCRL(t, c, e.interCert)
		got := crlEntries(rl)
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wants))) {
			t.Fatalf("CRL %d lists %v, want %v", c.Number, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wants)))
		}
		for s, w := range wants {
			g := got[s]
			if pki.Reason(g.ReasonCode) != w.reason || !g.RevocationTime.Equal(w.at) || !invalidityDate(t, g).Equal(w.invalidity) {
				t.Errorf("CRL entry %s: reason %d at %s invalid since %s; want %d at %s invalid since %s",
					s, g.ReasonCode, g.RevocationTime, invalidityDate(t, g), w.reason, w.at, w.invalidity)
			}
		}
	}
	second := e.regenerate(t, e.inter.ID)
	check(second, wants)
	third := e.regenerate(t, e.inter.ID)
	check(third, wants)
	if !(first.Number < second.Number && second.Number < third.Number) {
		t.Errorf("CRL numbers %d, %d, %d do not increase", first.Number, second.Number, third.Number)
	}
	if got, err := e.svc.CRL(ctx, e.inter.ID); err != nil || got.Number != third.Number {
		t.Errorf("CRL() = number %v, %v; want the latest, %d", got, err, third.Number)
	}

	// A restart serves the stored CRL, signing nothing, and continues the
	// numbering.
	e.svc = e.restart(t)
	served, err := e.svc.CRL(ctx, e.inter.ID)
	if err != nil {
		t.Fatal(err)
	}
	if served.Number != third.Number || !bytes.Equal(served.DER, third.DER) {
		t.Errorf("CRL after restart is number %d, want the stored %d", served.Number, third.Number)
	}
	restarted := e.regenerate(t, e.inter.ID)
	if restarted.Number <= third.Number {
		t.Errorf("CRL number after restart %d, want above %d", restarted.Number, third.Number)
	}
	check(restarted, wants)

	// The short-lived certificate leaves the CRL once it has expired; the
	// others stay.
	e.clk.Set(short.NotAfter)
	check(e.regenerate(t, e.inter.ID), wants)
	e.clk.Set(short.NotAfter.Add(time.Second))
	delete(wants, serialOf(short))
	later := e.regenerate(t, e.inter.ID)
	check(later, wants)
	if later.Number <= restarted.Number {
		t.Errorf("CRL number %d after %d", later.Number, restarted.Number)
	}

	// The root's CRL is its own, numbered on its own and empty.
	rootCRL := e.regenerate(t, e.root.ID)
	if rl := parseCRL(t, rootCRL, e.rootCert); len(rl.RevokedCertificateEntries) != 0 {
		t.Errorf("root CRL lists %d entries", len(rl.RevokedCertificateEntries))
	}
	if _, err := e.svc.CRL(ctx, "no-such-ca"); !errors.Is(err, revoke.ErrNoCA) {
		t.Errorf("CRL of an unknown CA = %v, want ErrNoCA", err)
	}
	if _, err := e.svc.CRL(ctx, "issuing"); !errors.Is(err, revoke.ErrNoCA) {
		t.Errorf("CRL of a CA by name = %v, want ErrNoCA", err)
	}
}

// TestRunCoalesces is not parallel: it measures how a burst of revocations
// is batched in real time.
func TestRunCoalesces(t *testing.T) {
	const n = 30
	e := newEnv(t, func(c *revoke.Config) { c.Coalesce = 20 * time.Millisecond })
	leaves := e.leaves(t, n, leafOpts{})
	base, err := e.svc.CRL(context.Background(), e.inter.ID)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	defer stop()

	want := map[string]bool{}
	for _, l := range leaves {
		e.revoke(t, l, pki.ReasonSuperseded)
		want[serialOf(l)] = true
	}
	deadline := time.Now().Add(5 * time.Second)
	var last *revoke.CRL
	for {
		c, err := e.svc.CRL(context.Background(), e.inter.ID)
		if err != nil {
			t.Fatal(err)
		}
		last = c
		if c.Entries == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := crlEntries(parseCRL(t, last, e.interCert))
	for s := range want {
		if _, ok := got[s]; !ok {
			t.Errorf("after 5 s the CRL does not list %s", s)
		}
	}
	for _, l := range leaves {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Revoked)
	}
	grew := last.Number - base.Number
	t.Logf("%d revocations, %d CRLs", n, grew)
	if grew < 1 || grew > n/3 {
		t.Errorf("CRL number grew by %d over %d revocations; want a few rebuilds, coalesced", grew, n)
	}
	stop()
}

func TestMaintainCRLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)

	// The first pass builds every CA's CRL.
	e.svc.MaintainCRLs(ctx)
	built := map[string]*revoke.CRL{}
	for _, c := range []*ca.CA{e.root, e.inter} {
		crl, err := e.svc.CRL(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		built[c.ID] = crl
	}
	// CRL() served the CRLs MaintainCRLs built rather than building them.
	for id, c := range built {
		if c.Number != 1 {
			t.Errorf("CA %s: CRL number %d, want 1", id, c.Number)
		}
	}
	same := func(when string) {
		t.Helper()
		for id, was := range built {
			now, err := e.svc.CRL(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if now.Number != was.Number || !bytes.Equal(now.DER, was.DER) {
				t.Errorf("%s: CA %s's CRL rebuilt (number %d -> %d)", when, id, was.Number, now.Number)
			}
		}
	}
	e.svc.MaintainCRLs(ctx)
	same("right after")
	e.clk.Advance(revoke.DefaultCRLLifetime/3 - time.Second)
	e.svc.MaintainCRLs(ctx)
	same("just before a third of the lifetime")

	e.clk.Advance(2 * time.Second)
	e.svc.MaintainCRLs(ctx)
	for id, was := range built {
		now, err := e.svc.CRL(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if now.Number <= was.Number || !now.ThisUpdate.After(was.ThisUpdate) || !now.ThisUpdate.Equal(e.clk.Now()) {
			t.Errorf("past a third of the lifetime, CA %s's CRL is number %d from %s; was %d from %s", id, now.Number, now.ThisUpdate, was.Number, was.ThisUpdate)
		}
		built[id] = now
	}
	e.svc.MaintainCRLs(ctx)
	same("after the refresh")

	// A revocation marks the CRL dirty: the next pass rebuilds it even
	// though it is fresh.
	leaf := e.leaf(t, leafOpts{})
	e.revoke(t, leaf, pki.ReasonSuperseded)
	e.svc.MaintainCRLs(ctx)
	c, err := e.svc.CRL(ctx, e.inter.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := crlEntries(parseCRL(t, c, e.interCert))[serialOf(leaf)]; !ok || c.Number <= built[e.inter.ID].Number {
		t.Errorf("after a revocation, MaintainCRLs left CRL %d without the serial", c.Number)
	}
}

// bulkSet is the certificates the bulk tests select from.
type bulkSet struct {
	k1 crypto.Signer
	// by name: webA1 (web_server, a.example.com, key k1), webB1 (web_server,
	// b.example.com, k1), webA2 (web_server, a.example.com, k2), svcA
	// (internal_service, a.example.com), svcC (internal_service,
	// c.example.com).
	certs map[string]*x509.Certificate
}

func (e *env) bulkSet(t *testing.T) bulkSet {
	t.Helper()
	k1, k2 := mustKey(t), mustKey(t)
	return bulkSet{k1: k1, certs: map[string]*x509.Certificate{
		"webA1": e.leaf(t, leafOpts{dns: []string{"a.example.com"}, key: k1}),
		"webB1": e.leaf(t, leafOpts{dns: []string{"b.example.com"}, key: k1}),
		"webA2": e.leaf(t, leafOpts{dns: []string{"a.example.com"}, key: k2}),
		"svcA":  e.leaf(t, leafOpts{profile: "internal_service", dns: []string{"a.example.com"}}),
		"svcC":  e.leaf(t, leafOpts{profile: "internal_service", dns: []string{"c.example.com"}}),
	}}
}

func spkiOf(k crypto.Signer) string {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	return pki.Fingerprint(der)
}

func TestRevokeMatching(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		sel  func(e *env, s bulkSet) inventory.Selector
		want []string
	}{
		{"profile", func(*env, bulkSet) inventory.Selector { return inventory.Selector{Profile: "web_server"} }, []string{"webA1", "webA2", "webB1"}},
		{"SAN", func(*env, bulkSet) inventory.Selector { return inventory.Selector{SAN: "a.example.com"} }, []string{"svcA", "webA1", "webA2"}},
		{"SAN in another case", func(*env, bulkSet) inventory.Selector { return inventory.Selector{SAN: "A.Example.COM"} }, []string{"svcA", "webA1", "webA2"}},
		{"SPKI", func(_ *env, s bulkSet) inventory.Selector { return inventory.Selector{SPKISHA256: spkiOf(s.k1)} }, []string{"webA1", "webB1"}},
		{"SPKI upper case", func(_ *env, s bulkSet) inventory.Selector {
			return inventory.Selector{SPKISHA256: strings.ToUpper(spkiOf(s.k1))}
		}, []string{"webA1", "webB1"}},
		{"profile and SAN", func(*env, bulkSet) inventory.Selector {
			return inventory.Selector{Profile: "internal_service", SAN: "a.example.com"}
		}, []string{"svcA"}},
		{"CA by ID", func(e *env, _ bulkSet) inventory.Selector { return inventory.Selector{CAID: e.inter.ID} }, []string{"svcA", "svcC", "webA1", "webA2", "webB1"}},
		{"CA by name and SAN", func(*env, bulkSet) inventory.Selector {
			return inventory.Selector{CAID: "issuing", SAN: "c.example.com"}
		}, []string{"svcC"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			set := e.bulkSet(t)
			sel := tt.sel(e, set)
			for _, c := range set.certs {
				wantStatus(t, e.svc, e.inter.ID, c, e.interCert, xocsp.Good)
			}
			wantSerials := make([]string, len(tt.want))
			for i, n := range tt.want {
				wantSerials[i] = serialOf(set.certs[n])
			}
			slices.Sort(wantSerials)
			serials := func(recs []*inventory.Revocation) []string {
				out := make([]string, len(recs))
				for i, r := range recs {
					out[i] = r.Serial
				}
				slices.Sort(out)
				return out
			}
			crlBefore := e.regenerate(t, e.inter.ID)

			e.clk.Advance(time.Hour)
			dry, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel, Reason: pki.ReasonKeyCompromise, DryRun: true})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if got := serials(dry); !slices.Equal(got, wantSerials) {
				t.Errorf("dry run would revoke %v, want %v", got, wantSerials)
			}
			for n, c := range set.certs {
				if _, err := e.db.GetRevocation(ctx, serialOf(c)); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("dry run revoked %s", n)
				}
				wantStatus(t, e.svc, e.inter.ID, c, e.interCert, xocsp.Good)
			}
			if crl, err := e.svc.CRL(ctx, e.inter.ID); err != nil || crl.Number != crlBefore.Number {
				t.Errorf("dry run changed the CRL: %v, %v", crl, err)
			}
			e.svc.MaintainCRLs(ctx)
			if crl, err := e.svc.CRL(ctx, e.inter.ID); err != nil || crl.Number != crlBefore.Number {
				t.Errorf("dry run marked the CRL dirty: %v, %v", crl, err)
			}

			recs, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel, Reason: pki.ReasonKeyCompromise, InvalidityDate: start})
			if err != nil {
				t.Fatalf("RevokeMatching: %v", err)
			}
			if got := serials(recs); !slices.Equal(got, wantSerials) {
				t.Errorf("revoked %v, want %v", got, wantSerials)
			}
			for _, r := range recs {
				if r.CAID != e.inter.ID || r.Reason != pki.ReasonKeyCompromise || r.RevokedBy != "alice" ||
					!r.RevokedAt.Equal(e.clk.Now()) || !r.InvalidityDate.Equal(start) || r.CA {
					t.Errorf("record %+v", r)
				}
			}
			for n, c := range set.certs {
				matched := slices.Contains(tt.want, n)
				cert, err := e.db.GetCertificate(ctx, serialOf(c))
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]inventory.Status{true: inventory.StatusRevoked, false: inventory.StatusValid}[matched]; cert.Status != want {
					t.Errorf("%s: status %s, want %s", n, cert.Status, want)
				}
				want := map[bool]int{true: xocsp.Revoked, false: xocsp.Good}[matched]
				r := wantStatus(t, e.svc, e.inter.ID, c, e.interCert, want)
				if matched && r.RevocationReason != xocsp.KeyCompromise {
					t.Errorf("%s: OCSP reason %d", n, r.RevocationReason)
				}
			}
			e.svc.MaintainCRLs(ctx)
			crl, err := e.svc.CRL(ctx, e.inter.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(crlEntries(parseCRL(t, crl, e.interCert)))); !slices.Equal(got, wantSerials) {
				t.Errorf("CRL lists %v, want %v", got, wantSerials)
			}

			// Once revoked, nothing is left to match.
			_, err = e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: sel})
			if !errors.Is(err, revoke.ErrNoMatch) {
				t.Errorf("second RevokeMatching = %v, want ErrNoMatch", err)
			}
		})
	}
}

func TestRevokeMatchingRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	set := e.bulkSet(t)
	for _, tt := range []struct {
		name string
		req  revoke.BulkRequest
		want error
	}{
		{"empty selector", revoke.BulkRequest{Principal: admin}, revoke.ErrInvalid},
		{"empty selector, dry run", revoke.BulkRequest{Principal: admin, DryRun: true}, revoke.ErrInvalid},
		{"no match", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{SAN: "nowhere.example.com"}}, revoke.ErrNoMatch},
		{"no match, dry run", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{SAN: "nowhere.example.com"}, DryRun: true}, revoke.ErrNoMatch},
		{"no match for both", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{Profile: "internal_service", SAN: "b.example.com"}}, revoke.ErrNoMatch},
		{"root issued nothing", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{CAID: e.root.ID}}, revoke.ErrNoMatch},
		{"unknown CA", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{CAID: "no-such-ca"}}, store.ErrNotFound},
		{"bad reason", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{Profile: "web_server"}, Reason: pki.Reason(6)}, revoke.ErrInvalid},
		{"future invalidity", revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{Profile: "web_server"}, InvalidityDate: start.Add(time.Hour)}, revoke.ErrInvalid},
		{"non-admin", revoke.BulkRequest{Principal: authz.WithRole("mallory", authz.KindHuman, authz.RoleViewer, authz.Scope{}), Selector: inventory.Selector{Profile: "web_server"}}, revoke.ErrForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := e.svc.RevokeMatching(ctx, tt.req)
			if !errors.Is(err, tt.want) || recs != nil {
				t.Errorf("RevokeMatching = %v, %v; want %v", recs, err, tt.want)
			}
		})
	}
	for n, c := range set.certs {
		if _, err := e.db.GetRevocation(ctx, serialOf(c)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused request revoked %s", n)
		}
	}
}

func TestRevokeMatchingSkipsRevokedAndExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	set := e.bulkSet(t)
	expiring := e.leaf(t, leafOpts{dns: []string{"a.example.com"}, days: 1})
	first := e.revoke(t, set.certs["webA1"], pki.ReasonSuperseded)

	e.clk.Set(expiring.NotAfter.Add(time.Second))
	want := []string{serialOf(set.certs["svcA"]), serialOf(set.certs["webA2"])}
	slices.Sort(want)
	for _, dry := range []bool{true, false} {
		recs, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{SAN: "a.example.com"}, Reason: pki.ReasonKeyCompromise, DryRun: dry})
		if err != nil {
			t.Fatalf("RevokeMatching (dry run %v): %v", dry, err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Serial)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("RevokeMatching (dry run %v) = %v, want %v (neither the revoked nor the expired one)", dry, got, want)
		}
	}
	if r, err := e.db.GetRevocation(ctx, serialOf(set.certs["webA1"])); err != nil || !sameRevocation(r, first) {
		t.Errorf("the earlier revocation became %+v, %v; want %+v", r, err, first)
	}
	if _, err := e.db.GetRevocation(ctx, serialOf(expiring)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired certificate was revoked: %v", err)
	}
	r := wantStatus(t, e.svc, e.inter.ID, set.certs["webA1"], e.interCert, xocsp.Revoked)
	if r.RevocationReason != xocsp.Superseded {
		t.Errorf("earlier revocation's OCSP reason became %d", r.RevocationReason)
	}
}

func TestRevokeMatchingLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 70 // above the threshold for re-signing revoked responses at once
	e := newEnv(t, nil)
	leaves := e.leaves(t, n, leafOpts{profile: "internal_service", dns: []string{"fleet.example.com"}})
	keep := e.leaf(t, leafOpts{profile: "internal_service"})
	if _, err := e.svc.Presign(ctx, e.inter.ID); err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves[:3] {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Good)
	}
	// A SHA-256 entry is cached too and must go.
	if r, _ := ask(t, e.svc, e.inter.ID, leaves[5], e.interCert, crypto.SHA256); r.Status != xocsp.Good {
		t.Fatal("SHA-256 request before revocation not good")
	}

	recs, err := e.svc.RevokeMatching(ctx, revoke.BulkRequest{Principal: admin, Selector: inventory.Selector{SAN: "fleet.example.com"}, Reason: pki.ReasonCessationOfOperation})
	if err != nil || len(recs) != n {
		t.Fatalf("RevokeMatching = %d records, %v; want %d", len(recs), err, n)
	}
	for _, l := range leaves {
		r := wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Revoked)
		if r.RevocationReason != xocsp.CessationOfOperation {
			t.Errorf("%s: reason %d", serialOf(l), r.RevocationReason)
		}
	}
	if r, _ := ask(t, e.svc, e.inter.ID, leaves[5], e.interCert, crypto.SHA256); r.Status != xocsp.Revoked {
		t.Errorf("SHA-256 request after revocation: %s", statusName(r.Status))
	}
	wantStatus(t, e.svc, e.inter.ID, keep, e.interCert, xocsp.Good)

	// A pre-signing pass afterwards keeps them revoked.
	e.clk.Advance(revoke.DefaultOCSPLifetime / 3)
	if _, err := e.svc.Presign(ctx, e.inter.ID); err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Revoked)
	}
	if got := e.regenerate(t, e.inter.ID).Entries; got != n {
		t.Errorf("CRL has %d entries, want %d", got, n)
	}
}

func TestRevokeCA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaf := e.leaf(t, leafOpts{})

	// The root vouches for the intermediate until it is revoked (and the
	// answer is cached).
	for i := 0; i < 2; i++ {
		wantStatus(t, e.svc, e.root.ID, e.interCert, e.rootCert, xocsp.Good)
	}
	rootCRL := e.regenerate(t, e.root.ID)

	if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: authz.WithRole("mallory", authz.KindHuman, authz.RoleViewer, authz.Scope{}), CA: "issuing"}); !errors.Is(err, revoke.ErrForbidden) {
		t.Errorf("RevokeCA by a non-admin = %v, want ErrForbidden", err)
	}
	if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "issuing", Reason: pki.Reason(6)}); !errors.Is(err, revoke.ErrInvalid) {
		t.Errorf("RevokeCA with reason 6 = %v, want ErrInvalid", err)
	}
	if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "no-such-ca"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeCA of an unknown CA = %v, want not found", err)
	}
	for _, name := range []string{"root", e.root.ID} {
		if _, _, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: name}); !errors.Is(err, revoke.ErrInvalid) {
			t.Errorf("RevokeCA(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if c, err := e.db.GetCA(ctx, e.inter.ID); err != nil || c.Status != ca.StatusActive {
		t.Fatalf("refused requests changed the intermediate: %v, %v", c, err)
	}
	if c, err := e.db.GetCA(ctx, e.root.ID); err != nil || c.Status != ca.StatusActive {
		t.Fatalf("refused requests changed the root: %v, %v", c, err)
	}

	e.clk.Advance(time.Hour)
	rec, created, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: "issuing"})
	if err != nil || !created {
		t.Fatalf("RevokeCA = created %v, %v", created, err)
	}
	want := inventory.Revocation{
		Serial: serialOf(e.interCert), CAID: e.root.ID, RevokedAt: e.clk.Now(), Reason: pki.ReasonCACompromise,
		RevokedBy: "alice", NotAfter: e.interCert.NotAfter.UTC(), CA: true,
	}
	if !sameRevocation(rec, &want) {
		t.Errorf("RevokeCA = %+v, want %+v", rec, want)
	}
	if c, err := e.db.GetCA(ctx, e.inter.ID); err != nil || c.Status != ca.StatusDisabled {
		t.Errorf("intermediate after revocation: %+v, %v; want disabled", c, err)
	}

	// OCSP at the root says revoked at once.
	r := wantStatus(t, e.svc, e.root.ID, e.interCert, e.rootCert, xocsp.Revoked)
	if r.RevocationReason != xocsp.CACompromise || !r.RevokedAt.Equal(want.RevokedAt) {
		t.Errorf("root OCSP: reason %d at %s", r.RevocationReason, r.RevokedAt)
	}
	// The root's CRL lists it.
	c := e.regenerate(t, e.root.ID)
	got := crlEntries(parseCRL(t, c, e.rootCert))
	if entry, ok := got[want.Serial]; !ok || len(got) != 1 || pki.Reason(entry.ReasonCode) != pki.ReasonCACompromise || !entry.RevocationTime.Equal(want.RevokedAt) {
		t.Errorf("root CRL %d lists %v, want only %s (caCompromise)", c.Number, slices.Sorted(maps.Keys(got)), want.Serial)
	}
	if c.Number <= rootCRL.Number {
		t.Errorf("root CRL number %d after %d", c.Number, rootCRL.Number)
	}
	// Not the intermediate's own, which still serves its leaves.
	if n := len(parseCRL(t, e.regenerate(t, e.inter.ID), e.interCert).RevokedCertificateEntries); n != 0 {
		t.Errorf("the intermediate's CRL lists %d entries", n)
	}
	wantStatus(t, e.svc, e.inter.ID, leaf, e.interCert, xocsp.Good)

	// Again: the first record stands.
	e.clk.Advance(time.Hour)
	again, created, err := e.svc.RevokeCA(ctx, revoke.CARequest{Principal: admin, CA: e.inter.ID, Reason: pki.ReasonSuperseded})
	if err != nil || created || !sameRevocation(again, &want) {
		t.Errorf("second RevokeCA = %+v, created %v, %v; want the first record", again, created, err)
	}
	// And after a restart, OCSP still says so.
	e.svc = e.restart(t)
	wantStatus(t, e.svc, e.root.ID, e.interCert, e.rootCert, xocsp.Revoked)
}

func TestResponderCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	leaves := e.leaves(t, 4, leafOpts{})

	r, _ := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	first := r.Certificate
	if first == nil {
		t.Fatal("response carries no responder certificate")
	}
	checkResponder(t, first, e.interCert, e.clk.Now(), revoke.DefaultResponderLifetime)
	stored, err := e.db.GetOCSPResponder(ctx, e.inter.ID)
	if err != nil || !bytes.Equal(stored.CertDER, first.Raw) {
		t.Fatalf("stored responder = %v, %v; want the one in the response", stored, err)
	}
	if stored.Key.Provider != software.Name {
		t.Errorf("responder key provider %q, want software (the CA's key is software)", stored.Key.Provider)
	}
	// The root has its own.
	rr, _ := ask(t, e.svc, e.root.ID, e.interCert, e.rootCert, 0)
	checkResponder(t, rr.Certificate, e.rootCert, e.clk.Now(), revoke.DefaultResponderLifetime)

	// A restart reuses the stored responder while it is not due.
	e.clk.Advance(revoke.DefaultResponderLifetime / 2)
	restarted := e.restart(t)
	r, _ = ask(t, restarted, e.inter.ID, leaves[1], e.interCert, 0)
	if r.Certificate.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("after a restart, responder %s, want the stored %s", serialOf(r.Certificate), serialOf(first))
	}

	// Past two thirds of its life, maintenance replaces it, and every
	// response from then on is signed by the new one.
	e.clk.Set(first.NotBefore.Add(revoke.DefaultResponderLifetime*2/3 + time.Minute))
	e.svc.MaintainOCSP(ctx)
	// The root, which has no leaf responses to re-sign, rotates too.
	if got, err := e.db.GetOCSPResponder(ctx, e.root.ID); err != nil || bytes.Equal(got.CertDER, rr.Certificate.Raw) {
		t.Errorf("MaintainOCSP left the root's responder in place (%v)", err)
	} else {
		checkResponder(t, mustParse(t, got.CertDER), e.rootCert, e.clk.Now(), revoke.DefaultResponderLifetime)
	}
	r, _ = ask(t, e.svc, e.inter.ID, leaves[2], e.interCert, 0)
	second := r.Certificate
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("responder not rotated past two thirds of its life")
	}
	checkResponder(t, second, e.interCert, e.clk.Now(), revoke.DefaultResponderLifetime)
	for _, l := range leaves {
		r, _ := ask(t, e.svc, e.inter.ID, l, e.interCert, 0)
		if r.Certificate.SerialNumber.Cmp(second.SerialNumber) != 0 {
			t.Errorf("response for %s signed by responder %s, want the new %s", serialOf(l), serialOf(r.Certificate), serialOf(second))
		}
		if r.NextUpdate.After(r.Certificate.NotAfter) {
			t.Errorf("NextUpdate %s after the responder's NotAfter %s", r.NextUpdate, r.Certificate.NotAfter)
		}
	}
	if stored, err := e.db.GetOCSPResponder(ctx, e.inter.ID); err != nil || !bytes.Equal(stored.CertDER, second.Raw) {
		t.Errorf("stored responder not the new one: %v", err)
	}
	// The replaced software keys ended with their records: nothing is
	// left to destroy.
	if retired, err := e.db.RetiredKeys(ctx); err != nil || len(retired) != 0 {
		t.Errorf("retired keys after a software rotation: %+v, %v; want none", retired, err)
	}
	// Another restart picks up the new one.
	r, _ = ask(t, e.restart(t), e.inter.ID, leaves[3], e.interCert, 0)
	if r.Certificate.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("after a restart, responder %s, want %s", serialOf(r.Certificate), serialOf(second))
	}
}

func checkResponder(t *testing.T, c, issuer *x509.Certificate, now time.Time, lifetime time.Duration) {
	t.Helper()
	if err := c.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("responder certificate not signed by %s: %v", issuer.Subject.CommonName, err)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) || c.IsCA {
		t.Errorf("responder EKU %v, CA %v", c.ExtKeyUsage, c.IsCA)
	}
	nocheck := false
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidOCSPNoCheck) {
			nocheck = true
		}
	}
	if !nocheck {
		t.Error("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != lifetime {
		t.Errorf("responder lifetime %s, want %s", got, lifetime)
	}
	if now.Before(c.NotBefore) || now.Sub(c.NotBefore) > time.Minute {
		t.Errorf("responder NotBefore %s, issued at %s", c.NotBefore, now)
	}
}

// TestResponderNearEnd uses the shortest responder lifetime allowed, twice
// the response lifetime, so that responses signed late in a responder's
// life are cut to its end.
func TestResponderNearEnd(t *testing.T) {
	t.Parallel()
	const life = 24 * time.Hour
	e := newEnv(t, func(c *revoke.Config) { c.OCSPLifetime = life; c.ResponderLifetime = 2 * life })
	leaves := e.leaves(t, 3, leafOpts{})
	r, _ := ask(t, e.svc, e.inter.ID, leaves[0], e.interCert, 0)
	first := r.Certificate
	if !r.NextUpdate.Equal(r.ThisUpdate.Add(life)) {
		t.Errorf("NextUpdate %s, want ThisUpdate + %s", r.NextUpdate, life)
	}

	// Less than a response lifetime but more than a third of its own left:
	// the responder stays and the response ends with it.
	e.clk.Set(first.NotAfter.Add(-2 * life / 3).Add(-time.Minute))
	r, _ = ask(t, e.svc, e.inter.ID, leaves[1], e.interCert, 0)
	if r.Certificate.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("responder rotated with a third of its life left")
	}
	if !r.NextUpdate.Equal(first.NotAfter) {
		t.Errorf("NextUpdate %s, want the responder's NotAfter %s", r.NextUpdate, first.NotAfter)
	}

	// Inside the last third, the next response signed brings a new one.
	e.clk.Set(first.NotAfter.Add(-2 * life / 3).Add(time.Minute))
	r, _ = ask(t, e.svc, e.inter.ID, leaves[2], e.interCert, 0)
	if r.Certificate.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("responder not rotated in the last third of its life")
	}
	if r.NextUpdate.After(r.Certificate.NotAfter) || !r.NextUpdate.Equal(r.ThisUpdate.Add(life)) {
		t.Errorf("NextUpdate %s with responder NotAfter %s", r.NextUpdate, r.Certificate.NotAfter)
	}
}

// TestNoResponsePastNextUpdate: in a CA's last hours its responses end
// with it, earlier than half a response lifetime after they were signed; a
// cached one must not be served past its NextUpdate, which every client
// rejects (RFC 5019 4).
func TestNoResponsePastNextUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	short, err := e.issuer.CreateIntermediate(ctx, admin, "root", &ca.Spec{
		Name: "short", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test Short-lived CA"},
		KeyAlg: pki.ECDSAP256, Validity: 3 * day, MaxPathLen: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	shortCert := mustParse(t, short.CertDER)
	res, err := e.issuer.Issue(ctx, issue.Request{Principal: machine, CA: "short", Profile: "web_server", KeyAlgorithm: pki.ECDSAP256, DNSNames: []string{"late.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Set(shortCert.NotAfter.Add(-2 * time.Hour))
	if r, _ := ask(t, e.svc, short.ID, res.Leaf, shortCert, 0); !r.NextUpdate.Equal(shortCert.NotAfter) {
		t.Errorf("NextUpdate %s, want the CA's end %s", r.NextUpdate, shortCert.NotAfter)
	}
	e.clk.Set(shortCert.NotAfter.Add(3 * time.Hour))
	resp := e.svc.Respond(ctx, short.ID, ocspReq(t, res.Leaf, shortCert, 0))
	if resp.Cacheable && !resp.NextUpdate.After(e.clk.Now()) {
		t.Errorf("at %s served a response whose NextUpdate is %s", e.clk.Now(), resp.NextUpdate)
	}
}

func TestConcurrentRespondAndRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 24
	e := newEnv(t, nil)
	leaves := e.leaves(t, n, leafOpts{})
	for _, l := range leaves {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Good)
	}
	var revoked [n]atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hashes := []crypto.Hash{crypto.SHA1, crypto.SHA256}
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				i := mrand.IntN(n)
				h := hashes[j%2]
				// Read before asking: a revocation that had returned by
				// then must show.
				was := revoked[i].Load()
				der, err := xocsp.CreateRequest(leaves[i], e.interCert, &xocsp.RequestOptions{Hash: h})
				if err != nil {
					t.Error(err)
					return
				}
				resp := e.svc.Respond(ctx, e.inter.ID, der)
				r, err := xocsp.ParseResponseForCert(resp.DER, leaves[i], e.interCert)
				if err != nil {
					t.Errorf("concurrent response for %s: %v", serialOf(leaves[i]), err)
					return
				}
				if was && r.Status != xocsp.Revoked {
					t.Errorf("%s answered %s (%v) after its revocation returned", serialOf(leaves[i]), statusName(r.Status), h)
					return
				}
				if r.Status == xocsp.Unknown {
					t.Errorf("%s answered unknown", serialOf(leaves[i]))
					return
				}
			}
		}()
	}
	// Pre-signing passes and CRL maintenance run alongside.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.svc.Presign(ctx, e.inter.ID); err != nil {
				t.Error(err)
				return
			}
			e.svc.MaintainCRLs(ctx)
		}
	}()
	for i, l := range leaves {
		if i%2 == 1 {
			continue
		}
		if _, _, err := e.svc.Revoke(ctx, revoke.Request{Principal: admin, Serial: serialOf(l), Reason: pki.ReasonKeyCompromise}); err != nil {
			t.Error(err)
		}
		revoked[i].Store(true)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()

	e.svc.MaintainCRLs(ctx)
	c, err := e.svc.CRL(ctx, e.inter.ID)
	if err != nil {
		t.Fatal(err)
	}
	listed := crlEntries(parseCRL(t, c, e.interCert))
	for i, l := range leaves {
		want := xocsp.Good
		if i%2 == 0 {
			want = xocsp.Revoked
		}
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, want)
		if r, _ := ask(t, e.svc, e.inter.ID, l, e.interCert, crypto.SHA256); r.Status != want {
			t.Errorf("%s (SHA-256): %s, want %s", serialOf(l), statusName(r.Status), statusName(want))
		}
		if _, ok := listed[serialOf(l)]; ok != (want == xocsp.Revoked) {
			t.Errorf("%s: on the CRL %v, want %v", serialOf(l), ok, want == xocsp.Revoked)
		}
	}
}

var _ revoke.Store = (*pausingStore)(nil)

// pausingStore is the real store with one pause a test can arm in the
// middle of a read. It changes no data and answers nothing itself: it only
// fixes an interleaving of a read with a revocation that a race would
// produce now and then, so that the test fails every time, not sometimes.
type pausingStore struct {
	*store.DB
	mu     sync.Mutex
	lookup *pause // after LookupSerial has read the status
	each   *pause // before EachUnexpired hands on its first row
}

// pause blocks the read that takes it until released.
type pause struct {
	reached, release chan struct{}
}

func newPause() *pause { return &pause{reached: make(chan struct{}), release: make(chan struct{})} }

func (p *pause) wait() {
	close(p.reached)
	<-p.release
}

// take returns the armed pause, disarming it, or nil.
func (ps *pausingStore) take(slot **pause) *pause {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := *slot
	*slot = nil
	return p
}

func (ps *pausingStore) arm(slot **pause) *pause {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	*slot = newPause()
	return *slot
}

func (ps *pausingStore) LookupSerial(ctx context.Context, caID, serial string) (bool, *inventory.Revocation, error) {
	issued, rev, err := ps.DB.LookupSerial(ctx, caID, serial)
	if p := ps.take(&ps.lookup); p != nil {
		p.wait()
	}
	return issued, rev, err
}

func (ps *pausingStore) EachUnexpired(ctx context.Context, caID string, now time.Time, fn func(string, time.Time, *inventory.Revocation) error) error {
	p := ps.take(&ps.each)
	return ps.DB.EachUnexpired(ctx, caID, now, func(serial string, notAfter time.Time, rev *inventory.Revocation) error {
		if p != nil {
			p.wait()
			p = nil
		}
		return fn(serial, notAfter, rev)
	})
}

// pausing replaces the service with one on a pausingStore over the same
// database.
func (e *env) pausing(t *testing.T) *pausingStore {
	t.Helper()
	ps := &pausingStore{DB: e.db}
	svc, err := revoke.New(e.cfg, ps, e.kp, e.linter)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return ps
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestRespondRacingRevoke: a request that read "good" just before a
// revocation committed may answer good, but must not cache it.
func TestRespondRacingRevoke(t *testing.T) {
	t.Parallel()
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		t.Run(h.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			ps := e.pausing(t)
			leaf, other := e.leaf(t, leafOpts{}), e.leaf(t, leafOpts{})
			wantStatus(t, e.svc, e.inter.ID, other, e.interCert, xocsp.Good) // loads the CA and its responder

			p := ps.arm(&ps.lookup)
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.svc.Respond(ctx, e.inter.ID, ocspReq(t, leaf, e.interCert, h))
			}()
			waitFor(t, p.reached, "the lookup")
			e.revoke(t, leaf, pki.ReasonKeyCompromise)
			close(p.release)
			waitFor(t, done, "the racing request")

			if r, _ := ask(t, e.svc, e.inter.ID, leaf, e.interCert, h); r.Status != xocsp.Revoked {
				t.Errorf("after the revocation returned: %s, want revoked (a good answer read before it was cached)", statusName(r.Status))
			}
		})
	}
}

// TestPresignRacingRevoke: a pre-signing pass reads a snapshot that may
// predate a revocation; what it signs from it must not replace the revoked
// answer, whether one pass runs or two overlap.
func TestPresignRacingRevoke(t *testing.T) {
	t.Parallel()
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlapping=%v", overlap), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			ps := e.pausing(t)
			leaves := e.leaves(t, 3, leafOpts{})
			if _, err := e.svc.Presign(ctx, e.inter.ID); err != nil {
				t.Fatal(err)
			}

			p := ps.arm(&ps.each)
			slow := make(chan error, 1)
			go func() {
				_, err := e.svc.Presign(ctx, e.inter.ID)
				slow <- err
			}()
			waitFor(t, p.reached, "the pre-signing pass")
			var other chan error
			if overlap {
				// A second pass runs start to end while the first is
				// paused (or, if passes are serialised, waits for it).
				other = make(chan error, 1)
				go func() {
					_, err := e.svc.Presign(ctx, e.inter.ID)
					other <- err
				}()
				select {
				case err := <-other:
					other <- err
				case <-time.After(500 * time.Millisecond):
				}
			}
			for _, l := range leaves {
				e.revoke(t, l, pki.ReasonKeyCompromise)
			}
			close(p.release)
			for _, ch := range []chan error{slow, other} {
				if ch == nil {
					continue
				}
				select {
				case err := <-ch:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("pre-signing pass did not finish")
				}
			}
			for _, l := range leaves {
				if r, _ := ask(t, e.svc, e.inter.ID, l, e.interCert, 0); r.Status != xocsp.Revoked {
					t.Errorf("%s after its revocation returned: %s, want revoked", serialOf(l), statusName(r.Status))
				}
			}
		})
	}
}

// TestSetTimingsWhileRunning: a CRL lifetime replaced on a running service
// (a configuration reload) sets the next CRL's nextUpdate; timings below
// the minimums are refused and the running ones kept.
func TestSetTimingsWhileRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if err := e.svc.SetTimings(revoke.Timings{CRLLifetime: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	c := e.regenerate(t, e.inter.ID)
	if got := c.NextUpdate.Sub(c.ThisUpdate); got != 2*time.Hour {
		t.Errorf("CRL lifetime after SetTimings = %v, want 2h", got)
	}
	if err := e.svc.SetTimings(revoke.Timings{CRLLifetime: time.Minute}); err == nil {
		t.Fatal("a 1m CRL lifetime was accepted")
	}
	e.clk.Advance(time.Hour)
	c = e.regenerate(t, e.inter.ID)
	if got := c.NextUpdate.Sub(c.ThisUpdate); got != 2*time.Hour {
		t.Errorf("CRL lifetime after a refused SetTimings = %v, want the running 2h", got)
	}
}
