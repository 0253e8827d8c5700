package scan

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/revcheck/revchecktest"
	"github.com/certwright/certwright/internal/scan/scantest"
)

// loopback is the test resolver: every name is 127.0.0.1.
var loopback = staticResolver{netip.MustParseAddr("127.0.0.1")}

// testEngine is an Engine for loopback tests: 127.0.0.0/8 allowed
// unless cfg says otherwise, short waits, no pacing to speak of.
func testEngine(t *testing.T, cfg EngineConfig) *Engine {
	t.Helper()
	if cfg.Allow.Empty() {
		cfg.Allow = allowList(t, "127.0.0.0/8")
	}
	cfg.Clock, cfg.Log = clock.Real{}, slog.New(slog.DiscardHandler)
	if cfg.Resolver == nil {
		cfg.Resolver = loopback
	}
	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = 3 * time.Second
	}
	if cfg.BannerTimeout == 0 {
		cfg.BannerTimeout = 150 * time.Millisecond
	}
	if cfg.PerHost == 0 {
		cfg.PerHost = 1000
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func allowList(t *testing.T, entries ...string) discovery.AllowList {
	t.Helper()
	a, err := discovery.ParseAllowList(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// scanOne scans one target spec and returns its observation.
func scanOne(t *testing.T, e *Engine, spec string) discovery.Observation {
	t.Helper()
	obs, err := e.Scan(t.Context(), targets(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 {
		t.Fatalf("%d observations of %s, want 1", len(obs), spec)
	}
	return obs[0]
}

// leafTemplate is a server certificate for svc.test, valid for a month.
func leafTemplate(mutate func(*x509.Certificate)) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "svc.test"}, DNSNames: []string{"svc.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if mutate != nil {
		mutate(tmpl)
	}
	return tmpl
}

func tlsCert(leaf *revchecktest.CA, chain ...*revchecktest.CA) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Cert.Raw)
	}
	return c
}

// goTLS serves cfg on a loopback port: a handshake per connection.
func goTLS(t *testing.T, cfg *tls.Config) (string, *atomic.Int32) {
	t.Helper()
	return scantest.ServeLoopback(t, func(c net.Conn) { _ = tls.Server(c, cfg).Handshake() })
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func reasonCodes(o discovery.Observation) []string {
	if o.Grade == nil {
		return nil
	}
	var out []string
	for _, r := range o.Grade.Reasons {
		out = append(out, r.Code)
	}
	return out
}

func findingCodes(o discovery.Observation) []string {
	var out []string
	for _, f := range o.Findings {
		out = append(out, f.Code)
	}
	return out
}

func finding(o discovery.Observation, code string) (discovery.Finding, bool) {
	i := slices.IndexFunc(o.Findings, func(f discovery.Finding) bool { return f.Code == code })
	if i < 0 {
		return discovery.Finding{}, false
	}
	return o.Findings[i], true
}

// letterRank orders letters best first; T and M rank with F.
var letterRank = map[string]int{"A+": 0, "A": 1, "A-": 2, "B": 3, "C": 4, "D": 5, "E": 6, "F": 7, "T": 7, "M": 7}

// TestEngineGrades scans TLS servers of known configurations and checks
// the grade, the reasons that shaped it and the certificate findings.
func TestEngineGrades(t *testing.T) {
	t.Parallel()
	root := revchecktest.Issue(t, revchecktest.CATemplate("Scan Test Root", 1), nil, nil)
	inter := revchecktest.Issue(t, revchecktest.CATemplate("Scan Test Issuing CA", 0), nil, root)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weakKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := revchecktest.Issue(t, leafTemplate(nil), nil, inter)
	weak := revchecktest.Issue(t, leafTemplate(nil), weakKey, inter)
	goodRSA := revchecktest.Issue(t, leafTemplate(nil), rsaKey, inter)
	expired := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-60*24*time.Hour), time.Now().Add(-24*time.Hour)
	}), nil, inter)
	otherName := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) {
		c.Subject.CommonName, c.DNSNames = "other.test", []string{"other.test"}
	}), nil, inter)
	self := revchecktest.Issue(t, leafTemplate(nil), nil, nil)
	strict := func(c tls.Certificate) string {
		addr, _ := goTLS(t, &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12})
		return addr
	}
	e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{root.Cert}, SkipRevocation: true})

	tests := []struct {
		name     string
		addr     func() string
		letter   string // exact, or with atMost the worst allowed
		atMost   bool
		reasons  []string
		findings []string
		check    func(*testing.T, discovery.Observation)
	}{{
		name: "strict Go server", addr: func() string { return strict(tlsCert(good, inter)) },
		letter: "A",
		check: func(t *testing.T, o discovery.Observation) {
			if !slices.Equal(o.Versions, []string{discovery.VersionTLS12, discovery.VersionTLS13}) || !o.VersionsComplete || !o.SuitesComplete {
				t.Errorf("versions %v (complete %v, suites complete %v), want TLS1.2 and TLS1.3, all tried", o.Versions, o.VersionsComplete, o.SuitesComplete)
			}
			if o.ForwardSecrecy != discovery.FSAll || o.WeakSuites || o.Negotiated != discovery.VersionTLS13 || len(o.Suites) < 4 {
				t.Errorf("forward secrecy %q, weak %v, negotiated %q, suites %v", o.ForwardSecrecy, o.WeakSuites, o.Negotiated, o.Suites)
			}
			if len(o.Chain) != 2 || !good.Cert.Equal(o.Leaf()) {
				t.Errorf("chain of %d certificates, leaf %v, want the served leaf and intermediate", len(o.Chain), o.Leaf())
			}
			for _, f := range o.Findings {
				if f.Severity != discovery.SeverityInfo {
					t.Errorf("finding on a clean server: %+v", f)
				}
			}
		},
	}, {
		name: "openssl with TLS 1.0 enabled",
		addr: func() string {
			certPEM, keyPEM := scantest.PEM(t, []*x509.Certificate{goodRSA.Cert, inter.Cert}, goodRSA.Key)
			return scantest.StartOpenSSL(t, certPEM, keyPEM, "-cipher", "DEFAULT@SECLEVEL=0")
		},
		letter: "B", atMost: true, reasons: []string{"tls10"},
		check: func(t *testing.T, o discovery.Observation) {
			if !slices.Contains(o.Versions, discovery.VersionTLS10) || !o.VersionsComplete || !o.WeakSuites || !o.Weak() {
				t.Errorf("versions %v (complete %v), weak suites %v, weak %v: want TLS 1.0 seen and the endpoint weak", o.Versions, o.VersionsComplete, o.WeakSuites, o.Weak())
			}
			if o.Protocol != "https" {
				t.Errorf("protocol %q, want https (s_server -www answers HTTP)", o.Protocol)
			}
			if _, ok := finding(o, "hsts-missing"); !ok {
				t.Errorf("findings %v lack hsts-missing", findingCodes(o))
			}
		},
	}, {
		name: "HTTPS with a year of HSTS",
		addr: func() string {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
				io.WriteString(w, "ok")
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{tlsCert(good, inter)}, MinVersion: tls.VersionTLS12}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return srv.Listener.Addr().String()
		},
		letter: "A+", reasons: []string{"hsts_long"},
		check: func(t *testing.T, o discovery.Observation) {
			if o.Protocol != "https" || o.HSTS == nil || o.HSTS.MaxAge != 31536000 || !o.HSTS.IncludeSubDomains {
				t.Errorf("protocol %q, HSTS %+v: want https with the header read", o.Protocol, o.HSTS)
			}
		},
	}, {
		name: "1024-bit RSA key", addr: func() string { return strict(tlsCert(weak, inter)) },
		letter: "B", reasons: []string{"cert_key_lt_2048"}, findings: []string{"certificate-weak-key"},
	}, {
		name: "expired certificate", addr: func() string { return strict(tlsCert(expired, inter)) },
		letter: "T", reasons: []string{"cert_expired"}, findings: []string{"certificate-expired"},
	}, {
		name: "certificate for another name", addr: func() string { return strict(tlsCert(otherName, inter)) },
		letter: "M", reasons: []string{"cert_name_mismatch"}, findings: []string{"certificate-name-mismatch"},
	}, {
		name: "self-signed certificate", addr: func() string { return strict(tlsCert(self)) },
		letter: "T", reasons: []string{"cert_self_signed"}, findings: []string{"certificate-self-signed"},
	}, {
		name: "intermediate not sent", addr: func() string { return strict(tlsCert(good)) },
		letter: "T", reasons: []string{"cert_untrusted"}, findings: []string{"certificate-untrusted", "certificate-chain-incomplete"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := scanOne(t, e, "svc.test:"+port(tt.addr()))
			if !o.Reachable || o.Encryption != discovery.EncImplicitTLS || o.Grade == nil {
				t.Fatalf("reachable %v, encryption %s, grade %v, error %q: want a graded TLS endpoint", o.Reachable, o.Encryption, o.Grade, o.Error)
			}
			got := o.Grade.Letter
			if tt.atMost && letterRank[got] < letterRank[tt.letter] || !tt.atMost && got != tt.letter {
				t.Errorf("grade %s (reasons %v), want %s%s", got, o.Grade.Reasons, map[bool]string{true: "at most "}[tt.atMost], tt.letter)
			}
			if o.Grade.RulesVersion == "" || o.Grade.Score == 0 {
				t.Errorf("grade %+v lacks its rules version or score", o.Grade)
			}
			for _, r := range tt.reasons {
				if !slices.Contains(reasonCodes(o), r) {
					t.Errorf("reasons %v lack %s", reasonCodes(o), r)
				}
			}
			for _, f := range tt.findings {
				if !slices.Contains(findingCodes(o), f) {
					t.Errorf("findings %v lack %s", findingCodes(o), f)
				}
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

// revokedServer serves the fixture's leaf (app.example.internal) and
// intermediate, revoked in both the CRL and the OCSP answer.
func revokedServer(t *testing.T) (*revchecktest.Fixture, string) {
	t.Helper()
	f := revchecktest.New(t, revchecktest.Options{})
	f.CRL = revchecktest.ServeBody(f.FreshCRL(t, f.Leaf.Cert.SerialNumber))
	f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Revoked)
	f.Start()
	addr, _ := goTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(f.Leaf, f.Inter)}, MinVersion: tls.VersionTLS12})
	return f, "app.example.internal:" + port(addr)
}

// TestEngineRevoked: a certificate revoked by its own CRL and OCSP
// responder grades F, with the reason and a critical finding.
func TestEngineRevoked(t *testing.T) {
	t.Parallel()
	f, spec := revokedServer(t)
	e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{f.Root.Cert}, Fetch: FetchPolicy{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
	o := scanOne(t, e, spec)
	if o.Grade == nil || o.Grade.Letter != "F" || !slices.Contains(reasonCodes(o), "cert_revoked") {
		t.Fatalf("grade %+v, want F for a revoked certificate", o.Grade)
	}
	fd, ok := finding(o, CodeCertRevoked)
	if !ok || fd.Severity != discovery.SeverityCritical || !strings.Contains(fd.Message, "key_compromise") {
		t.Errorf("findings %+v, want a critical %s naming the reason", o.Findings, CodeCertRevoked)
	}
	if len(f.UserAgents()) == 0 || f.UserAgents()[0] != "certwright-scan" {
		t.Errorf("requests to the CRL and OCSP server: %v", f.UserAgents())
	}
}

// TestEngineRevocationFetchPolicy: the revocation URLs of a scanned
// certificate point at loopback; a policy that does not allow loopback
// (the server's, without the address in scan.allow) sends them nothing
// and says so, rather than fetching where a certificate tells it to.
func TestEngineRevocationFetchPolicy(t *testing.T) {
	t.Parallel()
	f, spec := revokedServer(t)
	for _, tt := range []struct {
		name   string
		policy FetchPolicy
	}{
		{"zero policy", FetchPolicy{}},
		{"public only", FetchPolicy{Public: true}},
		{"another range and host", FetchPolicy{Public: true, Allow: allowList(t, "10.0.0.0/8"), Hosts: []string{"ca.example.com"}}},
		{"loopback in scan.allow, not its port", FetchPolicy{Public: true, Allow: allowList(t, "127.0.0.0/8")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{f.Root.Cert}, Fetch: tt.policy})
			o := scanOne(t, e, spec)
			fd, ok := finding(o, CodeRevocationUnknown)
			if !ok || !strings.Contains(fd.Message, "not a public address") {
				t.Errorf("findings %+v, want %s saying the fetch was refused", o.Findings, CodeRevocationUnknown)
			}
			if _, revoked := finding(o, CodeCertRevoked); revoked || o.Grade == nil || o.Grade.Letter != "A" {
				t.Errorf("grade %+v, revoked finding %v: want A, the revocation unknown", o.Grade, revoked)
			}
		})
	}
	if got := f.UserAgents(); len(got) != 0 {
		t.Errorf("the CRL and OCSP server got %d requests, want none", len(got))
	}
}

// smtpServer is a fake SMTP server; with cfg it offers STARTTLS and
// hands the connection to TLS.
func smtpServer(cfg *tls.Config) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		io.WriteString(c, "220 mail.test ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " "); verb {
			case "EHLO":
				ext := ""
				if cfg != nil {
					ext = "250-STARTTLS\r\n"
				}
				io.WriteString(c, "250-mail.test\r\n"+ext+"250 8BITMIME\r\n")
			case "STARTTLS":
				io.WriteString(c, "220 go ahead\r\n")
				_ = tls.Server(c, cfg).Handshake()
				return
			case "QUIT":
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "502 not implemented\r\n")
			}
		}
	}
}

// TestEngineSTARTTLS: an SMTP server with STARTTLS is graded through
// the upgrade; one without is plaintext and not graded.
func TestEngineSTARTTLS(t *testing.T) {
	t.Parallel()
	root := revchecktest.Issue(t, revchecktest.CATemplate("Scan Test Root", 0), nil, nil)
	leaf := revchecktest.Issue(t, leafTemplate(nil), nil, root)
	withTLS, _ := scantest.ServeLoopback(t, smtpServer(&tls.Config{Certificates: []tls.Certificate{tlsCert(leaf)}, MinVersion: tls.VersionTLS12}))
	plain, _ := scantest.ServeLoopback(t, smtpServer(nil))
	e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{root.Cert}, SkipRevocation: true})
	obs, err := e.Scan(t.Context(), targets(t, "svc.test:"+port(withTLS), "svc.test:"+port(plain)))
	if err != nil {
		t.Fatal(err)
	}
	o := obs[0]
	if o.Protocol != "smtp" || o.Encryption != discovery.EncSTARTTLS || !o.VersionsComplete || !slices.Contains(o.Versions, discovery.VersionTLS13) {
		t.Errorf("STARTTLS server: protocol %q, encryption %s, versions %v (complete %v), error %q", o.Protocol, o.Encryption, o.Versions, o.VersionsComplete, o.Error)
	}
	if o.Grade == nil || o.Grade.Letter != "A" || !leaf.Cert.Equal(o.Leaf()) {
		t.Errorf("STARTTLS server: grade %+v, leaf %v; want A for the served leaf", o.Grade, o.Leaf())
	}
	p := obs[1]
	if p.Protocol != "smtp" || p.Encryption != discovery.EncNone || p.Grade != nil || !slices.Contains(findingCodes(p), "no-tls") {
		t.Errorf("plaintext SMTP: protocol %q, encryption %s, grade %v, findings %v", p.Protocol, p.Encryption, p.Grade, findingCodes(p))
	}
}

// TestEngineRefusesOutsidePolicy: a target outside the allow-list, by
// address or by a name resolving outside it, is refused and never
// dialled.
func TestEngineRefusesOutsidePolicy(t *testing.T) {
	t.Parallel()
	addr, accepted := goTLS(t, &tls.Config{Certificates: []tls.Certificate{selfSignedTLS(t, "svc.test")}})
	e := testEngine(t, EngineConfig{Allow: allowList(t, "10.0.0.0/8")})
	obs, err := e.Scan(t.Context(), targets(t, addr, "svc.test:"+port(addr)))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if o.Reachable || !strings.Contains(o.Error, "allow-list") || o.Grade != nil {
			t.Errorf("%s: reachable %v, error %q, want refused as outside the allow-list", o.Key(), o.Reachable, o.Error)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the server accepted %d connections from refused targets", n)
	}
}

// TestEngineConnectionBudget: the enumeration stops at the per-target
// budget, and the observation says its picture is partial.
func TestEngineConnectionBudget(t *testing.T) {
	t.Parallel()
	addr, accepted := goTLS(t, &tls.Config{Certificates: []tls.Certificate{selfSignedTLS(t, "svc.test")}, MinVersion: tls.VersionTLS12})
	e := testEngine(t, EngineConfig{MaxConnections: 12, SkipRevocation: true})
	o := scanOne(t, e, addr)
	if n := accepted.Load(); n > 12 {
		t.Errorf("%d connections, budget 12", n)
	}
	if o.VersionsComplete || o.SuitesComplete || !slices.Contains(findingCodes(o), CodeTLSScanIncomplete) {
		t.Errorf("complete %v/%v, findings %v: want the scan marked incomplete", o.VersionsComplete, o.SuitesComplete, findingCodes(o))
	}
	if o.Grade != nil && !slices.Contains(reasonCodes(o), "scan_incomplete") {
		t.Errorf("grade reasons %v lack scan_incomplete", reasonCodes(o))
	}
}

// TestEngineFailuresStayLocal: a server that never answers times out on
// its own; the other targets are still observed; a scan cancelled
// returns what was finished and the cancellation.
func TestEngineFailuresStayLocal(t *testing.T) {
	t.Parallel()
	silent, _ := scantest.ServeLoopback(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	closed := revchecktest.ClosedAddr(t)
	plain, _ := scantest.ServeLoopback(t, smtpServer(nil))
	e := testEngine(t, EngineConfig{Timeout: 400 * time.Millisecond, IOTimeout: time.Second})
	obs, err := e.Scan(t.Context(), targets(t, silent, closed, plain))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 3 {
		t.Fatalf("%d observations, want 3", len(obs))
	}
	if o := obs[0]; !o.Reachable || !strings.Contains(o.Error, "timed out") {
		t.Errorf("silent server: reachable %v, error %q; want a timeout: %+v", o.Reachable, o.Error, o)
	}
	if o := obs[1]; o.Reachable || !strings.Contains(o.Error, "refused") {
		t.Errorf("closed port: reachable %v, error %q", o.Reachable, o.Error)
	}
	if o := obs[2]; o.Protocol != "smtp" || o.Encryption != discovery.EncNone {
		t.Errorf("SMTP after the failures: protocol %q, encryption %s, error %q", o.Protocol, o.Encryption, o.Error)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	slow := testEngine(t, EngineConfig{})
	obs, err = slow.Scan(ctx, targets(t, silent))
	if !errors.Is(err, context.DeadlineExceeded) || len(obs) != 0 {
		t.Errorf("cancelled scan: %d observations, %v; want none and the context's error", len(obs), err)
	}
}

// TestEnginePacing: the targets of one host are scanned one after
// another, their connections PerHost a second.
func TestEnginePacing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var starts []time.Time
	var open, most int
	handle := func(c net.Conn) {
		mu.Lock()
		starts = append(starts, time.Now())
		open++
		most = max(most, open)
		mu.Unlock()
		defer func() { mu.Lock(); open--; mu.Unlock() }()
		smtpServer(nil)(c)
	}
	var specs []string
	for range 3 {
		a, _ := scantest.ServeLoopback(t, handle)
		specs = append(specs, a)
	}
	e := testEngine(t, EngineConfig{PerHost: 10})
	if _, err := e.Scan(t.Context(), targets(t, specs...)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) < 3 || most != 1 {
		t.Fatalf("%d connections, at most %d at once: want at least 3, one at a time", len(starts), most)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 90*time.Millisecond {
			t.Errorf("connections %d and %d started %v apart, want at least 100ms (10 a second)", i-1, i, gap)
		}
	}
}

// TestEngineRealServices scans the services of this machine (the CI
// machine runs them all; each is skipped, named, when its port is
// closed). What each offers: see service.TestRealServices.
func TestEngineRealServices(t *testing.T) {
	t.Parallel()
	e := testEngine(t, EngineConfig{SkipRevocation: true, BannerTimeout: time.Second})
	for _, tt := range []struct {
		name, addr, protocol string
		enc                  discovery.Encryption
	}{
		{"PostgreSQL", "127.0.0.1:5432", "postgresql", discovery.EncOptional},
		{"MariaDB", "127.0.0.1:3306", "mysql", discovery.EncNone},
		{"Redis", "127.0.0.1:6379", "redis", discovery.EncNone},
		{"RabbitMQ", "127.0.0.1:5672", "amqp", discovery.EncNone},
		{"Mosquitto", "127.0.0.1:1883", "mqtt", discovery.EncNone},
		{"NATS", "127.0.0.1:4222", "nats", discovery.EncNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", tt.addr, time.Second)
			if err != nil {
				t.Skipf("%s is not listening on %s: %v", tt.name, tt.addr, err)
			}
			c.Close()
			o := scanOne(t, e, tt.addr)
			if !o.Reachable || o.Protocol != tt.protocol || o.Encryption != tt.enc {
				t.Fatalf("%s: reachable %v, protocol %q, encryption %s (error %q), want %s, %s", tt.name, o.Reachable, o.Protocol, o.Encryption, o.Error, tt.protocol, tt.enc)
			}
			if !o.Exposed() {
				t.Errorf("%s accepts plaintext but is not reported exposed", tt.name)
			}
			switch tt.enc {
			case discovery.EncNone:
				if o.Grade != nil || len(o.Versions) > 0 {
					t.Errorf("%s: plaintext only, but graded %v with versions %v", tt.name, o.Grade, o.Versions)
				}
			case discovery.EncOptional:
				// The TLS offered through SSLRequest is enumerated and graded.
				if o.Grade == nil || !o.VersionsComplete || len(o.Versions) == 0 || len(o.Chain) == 0 {
					t.Errorf("%s: grade %v, versions %v (complete %v), %d certificates: want its TLS graded", tt.name, o.Grade, o.Versions, o.VersionsComplete, len(o.Chain))
				}
			}
		})
	}
}

// TestStandalone: the CLI's entry parses targets, allows any, and trusts
// a private CA when given its root.
func TestStandalone(t *testing.T) {
	t.Parallel()
	if _, err := Standalone(t.Context(), nil, StandaloneOptions{}); !errors.Is(err, ErrNoTargets) {
		t.Errorf("no targets: %v", err)
	}
	if _, err := Standalone(t.Context(), []string{"10.0.0.0/8:443"}, StandaloneOptions{}); !errors.Is(err, discovery.ErrInvalid) {
		t.Errorf("a range too wide: %v, want discovery.ErrInvalid", err)
	}
	root := revchecktest.Issue(t, revchecktest.CATemplate("Standalone Root", 0), nil, nil)
	leaf := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }), nil, root)
	addr, _ := goTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf)}, MinVersion: tls.VersionTLS12})
	for _, tt := range []struct {
		name  string
		roots []*x509.Certificate
		want  string
	}{{"private CA trusted", []*x509.Certificate{root.Cert}, "A"}, {"private CA not trusted", nil, "T"}} {
		obs, err := Standalone(t.Context(), []string{addr}, StandaloneOptions{
			Roots: tt.roots, BannerTimeout: 100 * time.Millisecond, PerHost: 1000, SkipRevocation: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) != 1 || obs[0].Grade == nil || obs[0].Grade.Letter != tt.want {
			t.Errorf("%s: %+v, want grade %s", tt.name, obs, tt.want)
		}
	}
}

// TestEngineProtocolDetail scans an openssl s_server of a known
// configuration and checks what each version accepted: the suites in the
// server's order, their key exchange, cipher and weakness, the groups,
// the DHE prime size, and the summary lines of the table.
func TestEngineProtocolDetail(t *testing.T) {
	t.Parallel()
	root := revchecktest.Issue(t, revchecktest.CATemplate("Detail Test Root", 1), nil, nil)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leaf := revchecktest.Issue(t, leafTemplate(nil), key, root)
	certPEM, keyPEM := scantest.PEM(t, []*x509.Certificate{leaf.Cert}, key)
	addr := scantest.StartOpenSSL(t, certPEM, keyPEM, "-serverpref",
		"-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
		"-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
		"-groups", "X25519:P-256", "-dhparam", "tlsprobe/testdata/dh1024.pem")
	e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{root.Cert}, SkipRevocation: true})
	o := scanOne(t, e, "svc.test:"+port(addr))
	if !o.SuitesComplete {
		t.Fatalf("suites not enumerated: error %q, findings %v", o.Error, findingCodes(o))
	}
	ecdhe := func(name, cipher string, bits int, weak bool) discovery.SuiteDetail {
		return discovery.SuiteDetail{Name: name, KeyExchange: "ECDHE", Cipher: cipher, Bits: bits, Group: "x25519", Weak: weak}
	}
	tls13 := func(name, cipher string) discovery.SuiteDetail {
		return discovery.SuiteDetail{Name: name, KeyExchange: "TLS1.3", Cipher: cipher, Bits: 256, Group: "x25519"}
	}
	cbc := "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
	yes := true
	want := []discovery.ProtocolDetail{
		// CBC with SHA-1 is weak in TLS 1.0 only (BEAST, Lucky13).
		{Version: "TLS1.0", Suites: []discovery.SuiteDetail{ecdhe(cbc, "AES-CBC", 128, true)}},
		{Version: "TLS1.1", Suites: []discovery.SuiteDetail{ecdhe(cbc, "AES-CBC", 128, false)}},
		{Version: "TLS1.2", ServerOrder: &yes, Groups: []string{"x25519", "secp256r1"}, Suites: []discovery.SuiteDetail{
			ecdhe("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "AES-GCM", 128, false),
			ecdhe("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ChaCha20-Poly1305", 256, false),
			{Name: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", KeyExchange: "DHE", Cipher: "AES-GCM", Bits: 256, DHBits: 1024},
			ecdhe(cbc, "AES-CBC", 128, false),
		}},
		{Version: "TLS1.3", ServerOrder: &yes, Groups: []string{"x25519", "secp256r1"}, Suites: []discovery.SuiteDetail{
			tls13("TLS_AES_256_GCM_SHA384", "AES-GCM"), tls13("TLS_CHACHA20_POLY1305_SHA256", "ChaCha20-Poly1305"),
		}},
	}
	if !reflect.DeepEqual(o.Protocols, want) {
		got, _ := json.MarshalIndent(o.Protocols, "", "  ")
		t.Errorf("protocols:\n%s\nwant the four versions of the configuration, in the server's order", got)
	}
	if !slices.Equal(o.DHBits, []int{1024}) {
		t.Errorf("DH sizes %v, want [1024]", o.DHBits)
	}
	var b strings.Builder
	if err := WriteTable(&b, []discovery.Observation{o}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"suites:      TLS1.0: 1 suite (ECDHE 1; AES-CBC)\n",
		"  weak: " + cbc + "\n",
		"TLS1.2: 4 suites (ECDHE 3, DHE 1 at 1024 bits; AES-GCM, ChaCha20-Poly1305, AES-CBC; server order; groups x25519, secp256r1)\n",
		"TLS1.3: 2 suites (AES-GCM, ChaCha20-Poly1305; server order; groups x25519, secp256r1)\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("table lacks %q:\n%s", line, b.String())
		}
	}
	if strings.Count(b.String(), "weak: ") != 1 {
		t.Errorf("table names weak suites at more than TLS 1.0:\n%s", b.String())
	}
}

// TestEngineEscapesPeerText: a served certificate's names carrying
// terminal escapes and a line break reach neither the findings nor the
// table as control characters: a peer cannot rewrite the operator's
// terminal or forge a line of the report.
func TestEngineEscapesPeerText(t *testing.T) {
	t.Parallel()
	leaf := revchecktest.Issue(t, leafTemplate(func(c *x509.Certificate) {
		c.Subject = pkix.Name{CommonName: "x\x1b]0;owned\x07\x1b[2J"}
		c.DNSNames = []string{"a\x1b[31mred\nFAKE LINE: grade A+"}
	}), nil, nil)
	addr, _ := goTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf)}})
	o := scanOne(t, testEngine(t, EngineConfig{SkipRevocation: true}), "svc.test:"+port(addr))
	if _, ok := finding(o, "certificate-name-mismatch"); !ok {
		t.Fatalf("no name mismatch finding: %v", findingCodes(o))
	}
	for _, f := range o.Findings {
		if strings.ContainsAny(f.Message, "\x1b\x07\n") {
			t.Errorf("finding %s carries control characters: %q", f.Code, f.Message)
		}
	}
	var b strings.Builder
	if err := WriteTable(&b, []discovery.Observation{o}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\nFAKE LINE") {
		t.Errorf("control characters reach the table:\n%q", out)
	}
	if !strings.Contains(out, `x\x1b]0`) || !strings.Contains(out, `a\x1b[31mred\nFAKE LINE`) {
		t.Errorf("the table does not show the names escaped:\n%s", out)
	}
}

// TestEngineKeyProof: a chain counts as the server's only when a
// handshake with it completed, proving the server holds its key. A
// server replaying someone else's certificate presents it, but proves
// nothing; a server Go's default handshake cannot agree with (RSA key
// exchange only) proves its key through a handshake offering every
// suite Go implements.
func TestEngineKeyProof(t *testing.T) {
	t.Parallel()
	victim := revchecktest.Issue(t, leafTemplate(nil), nil, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf := revchecktest.Issue(t, leafTemplate(nil), rsaKey, nil)
	other := revchecktest.Issue(t, leafTemplate(nil), nil, nil)
	replay := tls.Certificate{Certificate: [][]byte{victim.Cert.Raw}, PrivateKey: other.Key}
	e := testEngine(t, EngineConfig{SkipRevocation: true})
	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		leaf   *x509.Certificate
		proven bool
	}{
		{"own key", &tls.Config{Certificates: []tls.Certificate{tlsCert(victim)}}, victim.Cert, true},
		{"replayed, TLS 1.3", &tls.Config{Certificates: []tls.Certificate{replay}}, victim.Cert, false},
		{"replayed, TLS 1.2", &tls.Config{Certificates: []tls.Certificate{replay}, MaxVersion: tls.VersionTLS12}, victim.Cert, false},
		{"RSA key exchange only", &tls.Config{Certificates: []tls.Certificate{tlsCert(rsaLeaf)}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, rsaLeaf.Cert, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := goTLS(t, tc.cfg)
			o := scanOne(t, e, "svc.test:"+port(addr))
			if !tc.leaf.Equal(o.Leaf()) {
				t.Fatalf("leaf %v, want the presented certificate kept", o.Leaf())
			}
			f, unproven := finding(o, CodeCertKeyNotProven)
			if o.KeyProven != tc.proven || unproven == tc.proven {
				t.Errorf("key proven %v, finding %v (%s), want proven %v", o.KeyProven, unproven, f.Message, tc.proven)
			}
			if unproven && !strings.Contains(f.Message, "not matched to the inventory") {
				t.Errorf("finding %q does not say what follows", f.Message)
			}
		})
	}
}

// TestStandaloneChecksTargetsOwnRevocation: the standalone CLI fetches
// revocation from public addresses and the scanned targets' own: a
// loopback Certwright, scanned on its HTTPS port, is asked about its
// certificates on its HTTP port.
func TestStandaloneChecksTargetsOwnRevocation(t *testing.T) {
	t.Parallel()
	f, spec := revokedServer(t)
	obs, err := Standalone(t.Context(), []string{"127.0.0.1:" + port(spec)}, StandaloneOptions{
		Roots: []*x509.Certificate{f.Root.Cert}, BannerTimeout: 100 * time.Millisecond, PerHost: 1000,
	})
	if err != nil || len(obs) != 1 {
		t.Fatalf("Standalone: %d observations, %v", len(obs), err)
	}
	if _, revoked := finding(obs[0], CodeCertRevoked); !revoked || obs[0].Grade == nil || obs[0].Grade.Letter != "F" {
		t.Errorf("grade %+v, findings %v: want F, revoked", obs[0].Grade, findingCodes(obs[0]))
	}
}

// TestEngineRevocationLimits: a scan reads at most ScanMaxCRL of a CRL
// (sixteen targets check revocation at once), and one scan fetches a
// CRL or an OCSP answer once, however many targets serve certificates
// that name it.
func TestEngineRevocationLimits(t *testing.T) {
	t.Parallel()
	t.Run("CRL size", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeChunked(make([]byte, ScanMaxCRL+1))
		f.Start()
		addr, _ := goTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(f.Leaf, f.Inter)}})
		e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{f.Root.Cert}, Fetch: FetchPolicy{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
		o := scanOne(t, e, "app.example.internal:"+port(addr))
		if fd, _ := finding(o, CodeRevocationUnknown); !strings.Contains(fd.Message, "larger than the 16 MiB limit") {
			t.Errorf("findings %+v, want the CRL refused as larger than 16 MiB", o.Findings)
		}
	})
	t.Run("one fetch per URL", func(t *testing.T) {
		t.Parallel()
		f := revchecktest.New(t, revchecktest.Options{})
		f.CRL = revchecktest.ServeBody(f.FreshCRL(t))
		f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
		f.Start()
		cfg := &tls.Config{Certificates: []tls.Certificate{tlsCert(f.Leaf, f.Inter)}}
		a, _ := goTLS(t, cfg)
		b, _ := goTLS(t, cfg)
		e := testEngine(t, EngineConfig{Roots: []*x509.Certificate{f.Root.Cert}, Fetch: FetchPolicy{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
		obs, err := e.Scan(t.Context(), targets(t, "app.example.internal:"+port(a), "app.example.internal:"+port(b)))
		if err != nil || len(obs) != 2 {
			t.Fatalf("%d observations, %v", len(obs), err)
		}
		for _, o := range obs {
			if _, undetermined := finding(o, CodeRevocationUnknown); undetermined {
				t.Errorf("%s: revocation undetermined: %v", o.Address, o.Findings)
			}
		}
		if n := len(f.UserAgents()); n != 2 {
			t.Errorf("the CRL and OCSP server got %d requests for two targets serving one certificate, want 2 (one CRL, one OCSP)", n)
		}
	})
}
