package acme_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/acme/validate"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

const day = 24 * time.Hour

var (
	start  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin  = authz.WithRole("alice", authz.KindHuman, authz.RoleAdmin, authz.Scope{})
	viewer = authz.WithRole("victor", authz.KindHuman, authz.RoleViewer, authz.Scope{})
)

// The store implements the ACME port.
var _ acme.Store = (*store.DB)(nil)

// env is the ACME core on real parts: a SQLite store, software keys, zlint,
// the issuance and revocation services with a P-256 root and issuing
// intermediate, a fake clock, and the real validator talking to an
// in-process DNS server (every name resolves to 127.0.0.1) and to loopback
// HTTP and TLS servers that answer challenges from what a test put in them.
type env struct {
	db       *store.DB
	clk      *clock.Fake
	log      *slog.Logger
	kp       *software.Provider
	issuer   *issue.Service
	revoker  *revoke.Service
	profiles *profile.Catalog
	access   *access.Service
	dns      *validatetest.DNSServer
	val      *validate.Validator
	svc      *acme.Service

	root, inter         *ca.CA
	rootCert, interCert *x509.Certificate

	mu       sync.Mutex
	httpResp map[string]string          // http-01: token -> body
	tlsCerts map[string]tls.Certificate // tls-alpn-01: SNI -> certificate
	httpPort int
	tlsPort  int
	replicas int // services made so far
}

// newEnv builds the environment and starts its ACME service; mutate may
// adjust the service's config (limits, lifetimes) before it is created.
func newEnv(t *testing.T, mutate func(*acme.Config)) *env {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/db", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newEnvOn(t, db, mutate)
}

// newEnvOn is newEnv on the store db.
func newEnvOn(t *testing.T, db *store.DB, mutate func(*acme.Config)) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	var err error
	e := &env{db: db, clk: clock.NewFake(start), log: log, httpResp: map[string]string{}, tlsCerts: map[string]tls.Certificate{}}
	kek := make([]byte, software.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	if e.kp, err = software.New(kek, nil); err != nil {
		t.Fatal(err)
	}
	linter, err := lint.New(lint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.profiles = profile.NewCatalog(db, e.clk.Now)
	e.issuer, err = issue.New(issue.Config{PublicHTTPBase: "http://pki.example.internal:8080", Clock: e.clk, Log: log},
		db, e.profiles, e.kp, linter)
	if err != nil {
		t.Fatal(err)
	}
	if e.revoker, err = revoke.New(revoke.Config{Clock: e.clk, Log: log}, db, e.kp, linter); err != nil {
		t.Fatal(err)
	}
	if e.access, err = access.New(db, e.clk, log, nil); err != nil {
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
	if e.rootCert, err = x509.ParseCertificate(e.root.CertDER); err != nil {
		t.Fatal(err)
	}
	if e.interCert, err = x509.ParseCertificate(e.inter.CertDER); err != nil {
		t.Fatal(err)
	}

	e.dns = validatetest.NewDNSServer(t)
	e.dns.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	e.startHTTP(t)
	e.startTLS(t)
	if e.val, err = validate.New(validate.Config{
		HTTPPort: e.httpPort, TLSPort: e.tlsPort, Resolver: e.dns.Addr(), Timeout: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	e.svc = e.service(t, mutate)
	return e
}

// service returns a new ACME service on the environment's database (a
// replica, when there is one already), running its workers until the test
// ends.
func (e *env) service(t *testing.T, mutate func(*acme.Config)) *acme.Service {
	t.Helper()
	e.mu.Lock()
	e.replicas++
	// Each service is a replica of its own (acme.Config.Replica).
	cfg := acme.Config{Clock: e.clk, Log: e.log, Workers: 4, Replica: fmt.Sprintf("replica-%d", e.replicas)}
	e.mu.Unlock()
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := acme.New(cfg, e.db, e.issuer, e.revoker, e.profiles, e.val, e.kp)
	if err != nil {
		t.Fatalf("acme.New: %v", err)
	}
	return running(t, svc)
}

// running runs svc until the test ends, and returns it.
func running(t *testing.T, svc *acme.Service) *acme.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = svc.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return svc
}

// startHTTP serves http-01 responses on 127.0.0.1.
func (e *env) startHTTP(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		e.mu.Lock()
		body, found := e.httpResp[token]
		e.mu.Unlock()
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	e.httpPort = srv.Listener.Addr().(*net.TCPAddr).Port
}

// startTLS serves tls-alpn-01 certificates on 127.0.0.1, chosen by SNI.
func (e *env) startTLS(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		NextProtos: []string{"acme-tls/1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			c, ok := e.tlsCerts[hello.ServerName]
			if !ok {
				return nil, errors.New("no challenge certificate for " + hello.ServerName)
			}
			return &c, nil
		},
	}
	tln := tls.NewListener(ln, cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		tln.Close()
		wg.Wait()
	})
	e.tlsPort = ln.Addr().(*net.TCPAddr).Port
}

// serveHTTP01 makes the HTTP server answer token with body.
func (e *env) serveHTTP01(token, body string) {
	e.mu.Lock()
	e.httpResp[token] = body
	e.mu.Unlock()
}

// serveTLSALPN01 makes the TLS server present a challenge certificate for
// the identifier, proving keyAuth.
func (e *env) serveTLSALPN01(t *testing.T, ident acme.Identifier, keyAuth string) {
	t.Helper()
	c, err := validate.ChallengeCert(ident.Type, ident.Value, keyAuth)
	if err != nil {
		t.Fatal(err)
	}
	sni := ident.Value
	if ident.Type == acme.IdentifierIP {
		// RFC 8738 §6: the SNI is the reverse mapping name.
		rev, err := dns.ReverseAddr(ident.Value)
		if err != nil {
			t.Fatal(err)
		}
		sni = strings.TrimSuffix(rev, ".")
	}
	e.mu.Lock()
	e.tlsCerts[sni] = c
	e.mu.Unlock()
}

// dns01Value is the TXT record value that proves keyAuth (RFC 8555 §8.4).
func dns01Value(keyAuth string) string {
	d := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// provisioner creates a provisioner on the issuing CA; zero fields of spec
// take "issuing" and "web_server".
func (e *env) provisioner(t *testing.T, spec acme.ProvisionerSpec) *acme.Provisioner {
	t.Helper()
	if spec.CA == "" {
		spec.CA = "issuing"
	}
	if spec.Profile == "" {
		spec.Profile = "web_server"
	}
	if _, err := e.svc.CreateProvisioner(context.Background(), admin, spec); err != nil {
		t.Fatalf("CreateProvisioner %s: %v", spec.Name, err)
	}
	p, err := e.svc.Provisioner(context.Background(), spec.Name)
	if err != nil {
		t.Fatalf("Provisioner %s: %v", spec.Name, err)
	}
	return p
}

// customProfile stores a copy of web_server named name after mutate.
func (e *env) customProfile(t *testing.T, name string, mutate func(*profile.Profile)) {
	t.Helper()
	p, _ := profile.Builtin("web_server")
	p.Name, p.Builtin = name, false
	mutate(p)
	if err := e.profiles.Create(context.Background(), admin, p); err != nil {
		t.Fatalf("create profile %s: %v", name, err)
	}
}

// thumbprint returns a fresh stand-in for an account key's RFC 7638
// thumbprint: the core treats it as an opaque base64url string.
func thumbprint(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// account registers a new account with a fresh key on prov.
func (e *env) account(t *testing.T, svc *acme.Service, prov *acme.Provisioner) *acme.Account {
	t.Helper()
	tp := thumbprint(t)
	a, created, err := svc.NewAccount(context.Background(), prov, acme.NewAccountRequest{
		Thumbprint: tp, JWK: []byte(`{"kty":"EC","test":"` + tp + `"}`), Contact: []string{"mailto:ops@example.test"},
		TermsAgreed: true,
	})
	if err != nil || !created {
		t.Fatalf("NewAccount: created %v, %v", created, err)
	}
	return a
}

func dnsIDs(names ...string) []acme.Identifier {
	out := make([]acme.Identifier, len(names))
	for i, n := range names {
		out[i] = acme.Identifier{Type: acme.IdentifierDNS, Value: n}
	}
	return out
}

// wantProblem asserts that err is an ACME problem of type typ.
func wantProblem(t testing.TB, err error, typ acme.ErrorType) *acme.Problem {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want problem %s", typ)
	}
	p := acme.AsProblem(err)
	if p == nil {
		t.Fatalf("got error %v (%T), want problem %s", err, err, typ)
	}
	if p.Type != typ {
		t.Fatalf("got problem %s (%s), want %s", p.Type, p.Detail, typ)
	}
	return p
}

// authzs loads the order's authorizations.
func authzs(t testing.TB, svc *acme.Service, acct *acme.Account, o *acme.Order) []*acme.Authorization {
	t.Helper()
	out := make([]*acme.Authorization, len(o.AuthzIDs))
	for i, id := range o.AuthzIDs {
		a, err := svc.Authorization(context.Background(), acct, id)
		if err != nil {
			t.Fatalf("Authorization %s: %v", id, err)
		}
		out[i] = a
	}
	return out
}

func challengeOf(t testing.TB, a *acme.Authorization, typ string) *acme.Challenge {
	t.Helper()
	for i := range a.Challenges {
		if a.Challenges[i].Type == typ {
			return &a.Challenges[i]
		}
	}
	t.Fatalf("authorization %s (%s) offers no %s challenge", a.ID, a.Identifier.Value, typ)
	return nil
}

// respond prepares the right answer to the authorization's challenge of
// type typ and tells the service to validate it.
func (e *env) respond(t *testing.T, svc *acme.Service, acct *acme.Account, a *acme.Authorization, typ string) *acme.Challenge {
	t.Helper()
	return e.respondFrom(t, svc, acct, a, typ, "")
}

// respondFrom is respond with the client's address.
func (e *env) respondFrom(t *testing.T, svc *acme.Service, acct *acme.Account, a *acme.Authorization, typ, clientIP string) *acme.Challenge {
	t.Helper()
	ch := challengeOf(t, a, typ)
	keyAuth := acme.KeyAuthorization(ch.Token, acct.KeyThumbprint)
	switch typ {
	case acme.ChallengeHTTP01:
		e.serveHTTP01(ch.Token, keyAuth)
	case acme.ChallengeDNS01:
		e.dns.SetTXT("_acme-challenge."+a.Identifier.Value, dns01Value(keyAuth))
	case acme.ChallengeTLSALPN01:
		e.serveTLSALPN01(t, a.Identifier, keyAuth)
	}
	got, _, err := svc.RespondChallenge(context.Background(), acct, a.ID, ch.ID, clientIP)
	if err != nil {
		t.Fatalf("RespondChallenge %s %s: %v", typ, a.Identifier.Value, err)
	}
	return got
}

// waitAuthz polls until the authorization leaves pending (at most 5 s) and
// checks it reached want.
func waitAuthz(t testing.TB, svc *acme.Service, acct *acme.Account, id, want string) *acme.Authorization {
	t.Helper()
	// It returns as soon as the authorization leaves pending; the bound
	// is for a loaded machine, where a validation queued behind a
	// tarpitted one waits out that one's timeout first.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		a, err := svc.Authorization(context.Background(), acct, id)
		if err != nil {
			t.Fatalf("Authorization %s: %v", id, err)
		}
		if a.Status != acme.StatusPending {
			if a.Status != want {
				t.Fatalf("authorization %s (%s) is %s, want %s; challenges %+v", id, a.Identifier.Value, a.Status, want, describe(a))
			}
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("authorization %s (%s) still pending after 20s, want %s", id, a.Identifier.Value, want)
		}
		<-tick.C
	}
}

func describe(a *acme.Authorization) []string {
	var out []string
	for _, c := range a.Challenges {
		s := c.Type + "=" + c.Status
		if c.Error != nil {
			s += " (" + string(c.Error.Type) + ": " + c.Error.Detail + ")"
		}
		out = append(out, s)
	}
	return out
}

// readyOrder creates an order and proves every new authorization with
// http-01, returning the order once ready.
func (e *env) readyOrder(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account, ids ...acme.Identifier) *acme.Order {
	t.Helper()
	o, err := svc.Order(context.Background(), acct, e.provedOrder(t, svc, prov, acct, ids...).ID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != acme.StatusReady {
		t.Fatalf("order %s is %s after every authorization is valid, want ready", o.ID, o.Status)
	}
	return o
}

// provedOrder creates an order and proves every new authorization with
// http-01, returning the order as created: nothing has asked for it since,
// so it is still stored pending.
func (e *env) provedOrder(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account, ids ...acme.Identifier) *acme.Order {
	t.Helper()
	o, err := svc.NewOrder(context.Background(), prov, acct, acme.OrderRequest{Identifiers: ids})
	if err != nil {
		t.Fatalf("NewOrder %v: %v", ids, err)
	}
	for _, a := range authzs(t, svc, acct, o) {
		if a.Status == acme.StatusPending {
			e.respond(t, svc, acct, a, acme.ChallengeHTTP01)
			waitAuthz(t, svc, acct, a.ID, acme.StatusValid)
		}
	}
	return o
}

// csrFor makes a CSR signed by key.
func csrFor(t testing.TB, key crypto.Signer, cn string, dnsNames []string, ips ...net.IP) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dnsNames, IPAddresses: ips,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issued is a certificate obtained through ACME.
type issued struct {
	order *acme.Order
	leaf  *x509.Certificate
	key   crypto.Signer
}

// issueCert runs an order for names to a certificate.
func (e *env) issueCert(t *testing.T, svc *acme.Service, prov *acme.Provisioner, acct *acme.Account, names ...string) issued {
	t.Helper()
	o := e.readyOrder(t, svc, prov, acct, dnsIDs(names...)...)
	key := newKey(t)
	o, err := svc.Finalize(context.Background(), prov, acct, o.ID, csrFor(t, key, names[0], names))
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if o.Status != acme.StatusValid || o.CertSerial == "" {
		t.Fatalf("finalized order is %s with serial %q", o.Status, o.CertSerial)
	}
	rec, err := e.db.GetCertificate(context.Background(), o.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	return issued{order: o, leaf: leaf, key: key}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// auditEvents returns every audit event in the environment's log (copies:
// the store reuses the event it hands to the callback).
func auditEvents(t testing.TB, e *env) []audit.Event {
	t.Helper()
	var out []audit.Event
	if err := e.db.EachAuditEvent(context.Background(), 0, func(ev *audit.Event) error {
		c := *ev
		c.Details = append([]byte(nil), ev.Details...)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func pkiP384(t testing.TB) (crypto.Signer, error) {
	t.Helper()
	return pki.ECDSAP384.Generate(nil)
}
