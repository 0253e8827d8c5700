package validate_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme/validate"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
)

const (
	token   = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	keyAuth = token + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

var localhost = netip.MustParseAddr("127.0.0.1")

// newValidator returns a Validator that resolves through dnsSrv.
func newValidator(t *testing.T, dnsSrv *validatetest.DNSServer, cfg validate.Config) *validate.Validator {
	t.Helper()
	if cfg.Resolver == "" {
		cfg.Resolver = dnsSrv.Addr()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
	v, err := validate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantProblem checks that err is nil (typ "") or an *validate.Error of typ
// whose Detail contains detail.
func wantProblem(t *testing.T, err error, typ, detail string) {
	t.Helper()
	if typ == "" {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	e, ok := errors.AsType[*validate.Error](err)
	if !ok {
		t.Fatalf("got %v (%T), want *validate.Error of type %s", err, err, typ)
	}
	if e.ACMEType() != typ {
		t.Fatalf("got type %q (%v), want %q", e.Type, err, typ)
	}
	if !strings.Contains(e.Detail, detail) {
		t.Fatalf("detail %q does not contain %q", e.Detail, detail)
	}
	if len(e.Detail) > 600 {
		t.Fatalf("detail is %d bytes long", len(e.Detail))
	}
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, p := listen(t)
	ln.Close()
	return p
}

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) int {
	t.Helper()
	ln, p := listen(t)
	validatetest.Tarpit(t, ln)
	return p
}

type ports struct{ http, tls int }

func TestHTTP01(t *testing.T) {
	t.Parallel()
	serveKeyAuth := func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(keyAuth + "\n")) }
	challengePath := "/.well-known/acme-challenge/" + token

	tests := []struct {
		name      string
		identType string
		value     string
		handler   func(p ports, hits *atomic.Int32) http.HandlerFunc
		cfg       func(t *testing.T, c *validate.Config, p ports)
		setup     func(s *validatetest.DNSServer)
		noDefault bool // no default A record: unknown names are NXDOMAIN
		wantType  string
		detail    string
	}{
		{
			name: "dns identifier", identType: "dns", value: "Example.TEST",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.Host != "example.test" || r.URL.Path != challengePath || r.UserAgent() != "Certwright-ACME-validator" {
						http.Error(w, "bad request "+r.Host+r.URL.Path+" "+r.UserAgent(), http.StatusBadRequest)
						return
					}
					serveKeyAuth(w, r)
				}
			},
		},
		{
			name: "ip identifier", identType: "ip", value: "127.0.0.1",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.Host != "127.0.0.1" {
						http.Error(w, "bad host "+r.Host, http.StatusBadRequest)
						return
					}
					serveKeyAuth(w, r)
				}
			},
		},
		{
			name: "wrong body", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("nope")) }
			},
			wantType: "incorrectResponse", detail: "HTTP 200 with a 4-byte body that is not the key authorization",
		},
		{
			name: "not found", identType: "dns", value: "example.test",
			handler:  func(ports, *atomic.Int32) http.HandlerFunc { return http.NotFound },
			wantType: "incorrectResponse", detail: "HTTP status 404",
		},
		{
			name: "body too large", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(strings.Repeat("a", 9000))) }
			},
			wantType: "incorrectResponse", detail: "response larger than 8192 bytes",
		},
		{
			name: "body within MaxBody", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			cfg:     func(_ *testing.T, c *validate.Config, _ ports) { c.MaxBody = int64(len(keyAuth)) + 1 },
		},
		{
			name: "redirect to allowed port", identType: "dns", value: "example.test",
			handler: func(p ports, _ *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					switch r.Host {
					case "example.test":
						http.Redirect(w, r, "http://other.test:"+strconv.Itoa(p.http)+"/final", http.StatusFound)
					case "other.test:" + strconv.Itoa(p.http):
						serveKeyAuth(w, r)
					default:
						http.NotFound(w, r)
					}
				}
			},
		},
		{
			name: "relative redirect", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/moved" {
						serveKeyAuth(w, r)
						return
					}
					http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
				}
			},
		},
		{
			name: "redirect to https", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.TLS != nil {
						serveKeyAuth(w, r)
						return
					}
					http.Redirect(w, r, "https://secure.test/x", http.StatusTemporaryRedirect)
				}
			},
		},
		{
			name: "redirect to disallowed port", identType: "dns", value: "example.test",
			handler: func(p ports, _ *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://example.test:"+strconv.Itoa(p.tls)+"/x", http.StatusFound)
				}
			},
			wantType: "connection", detail: "port must be absent or",
		},
		{
			name: "redirect to other scheme", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "ftp://example.test/x", http.StatusFound)
				}
			},
			wantType: "connection", detail: "only http and https",
		},
		{
			name: "too many redirects", identType: "dns", value: "example.test",
			handler: func(_ ports, hits *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if hits.Add(1) > 4 {
						serveKeyAuth(w, r)
						return
					}
					http.Redirect(w, r, r.URL.Path, http.StatusFound)
				}
			},
			cfg:      func(_ *testing.T, c *validate.Config, _ ports) { c.MaxRedirects = 3 },
			wantType: "connection", detail: "too many redirects",
		},
		{
			name: "redirect into denied range", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://ten.test/x", http.StatusFound)
				}
			},
			setup: func(s *validatetest.DNSServer) { s.SetA("ten.test", netip.MustParseAddr("10.1.2.3")) },
			cfg: func(_ *testing.T, c *validate.Config, _ ports) {
				c.Deny = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			},
			wantType: "rejectedIdentifier", detail: "validation to 10.1.2.3 is denied by policy",
		},
		{
			name: "redirect to name resolving into denied range", identType: "ip", value: "127.0.0.1",
			handler: func(ports, *atomic.Int32) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://denied.test/x", http.StatusFound)
				}
			},
			setup: func(s *validatetest.DNSServer) {
				s.SetA("denied.test", netip.MustParseAddr("192.0.2.7"), localhost)
			},
			cfg: func(_ *testing.T, c *validate.Config, _ ports) {
				c.Deny = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			},
			wantType: "rejectedIdentifier", detail: "validation to 192.0.2.7 is denied by policy",
		},
		{
			name: "denied name", identType: "dns", value: "example.test",
			handler: func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			cfg: func(_ *testing.T, c *validate.Config, _ ports) {
				c.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			},
			wantType: "rejectedIdentifier", detail: "validation to 127.0.0.1 is denied by policy",
		},
		{
			name: "denied ip", identType: "ip", value: "127.0.0.1",
			handler: func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			cfg: func(_ *testing.T, c *validate.Config, _ ports) {
				c.Deny = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			},
			wantType: "rejectedIdentifier", detail: "validation to 127.0.0.1 is denied by policy",
		},
		{
			name: "nxdomain", identType: "dns", value: "missing.test",
			handler:   func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			noDefault: true,
			wantType:  "dns", detail: "NXDOMAIN looking up A for missing.test",
		},
		{
			name: "name without addresses", identType: "dns", value: "txt-only.test",
			handler:   func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			setup:     func(s *validatetest.DNSServer) { s.SetTXT("txt-only.test", "x") },
			noDefault: true,
			wantType:  "dns", detail: "no A or AAAA records found for txt-only.test",
		},
		{
			name: "connection refused", identType: "dns", value: "example.test",
			handler:  func(ports, *atomic.Int32) http.HandlerFunc { return serveKeyAuth },
			cfg:      func(t *testing.T, c *validate.Config, _ ports) { c.HTTPPort = closedPort(t) },
			wantType: "connection", detail: "connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dnsSrv := validatetest.NewDNSServer(t)
			if !tt.noDefault {
				dnsSrv.SetDefaultA(localhost)
			}
			if tt.setup != nil {
				tt.setup(dnsSrv)
			}
			httpLn, httpPort := listen(t)
			tlsLn, tlsPort := listen(t)
			p := ports{http: httpPort, tls: tlsPort}
			var hits atomic.Int32
			h := tt.handler(p, &hits)
			for _, s := range []struct {
				ln  net.Listener
				tls bool
			}{{httpLn, false}, {tlsLn, true}} {
				srv := httptest.NewUnstartedServer(h)
				srv.Listener.Close()
				srv.Listener = s.ln
				if s.tls {
					srv.StartTLS()
				} else {
					srv.Start()
				}
				t.Cleanup(srv.Close)
			}
			cfg := validate.Config{HTTPPort: httpPort, TLSPort: tlsPort}
			if tt.cfg != nil {
				tt.cfg(t, &cfg, p)
			}
			v := newValidator(t, dnsSrv, cfg)
			err := v.Validate(t.Context(), "http-01", tt.identType, tt.value, token, keyAuth)
			wantProblem(t, err, tt.wantType, tt.detail)
		})
	}
}

func TestHTTP01IPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "[::1]" {
			http.Error(w, "bad host "+r.Host, http.StatusBadRequest)
			return
		}
		w.Write([]byte(keyAuth))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	dnsSrv := validatetest.NewDNSServer(t)
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: ln.Addr().(*net.TCPAddr).Port})
	wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "::1", token, keyAuth), "", "")
}

func TestHTTP01TriesAddressesInOrder(t *testing.T) {
	t.Parallel()
	ln, p := listen(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(keyAuth)) }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	dnsSrv := validatetest.NewDNSServer(t)
	// 127.0.0.2 refuses (nothing listens there on this port on Linux, where
	// all of 127/8 is local), so the validator must move on to 127.0.0.1.
	dnsSrv.SetA("example.test", netip.MustParseAddr("127.0.0.2"), localhost)
	ln2, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(p))
	if err == nil {
		ln2.Close()
	} else {
		t.Skipf("127.0.0.2 not usable: %v", err)
	}
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: p})
	wantProblem(t, v.Validate(t.Context(), "http-01", "dns", "example.test", token, keyAuth), "", "")
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			t.Parallel()
			p := blackhole(t)
			dnsSrv := validatetest.NewDNSServer(t)
			dnsSrv.SetDefaultA(localhost)
			v := newValidator(t, dnsSrv, validate.Config{HTTPPort: p, TLSPort: p, Timeout: 300 * time.Millisecond})
			start := time.Now()
			err := v.Validate(t.Context(), challenge, "dns", "example.test", token, keyAuth)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s", d)
			}
			wantProblem(t, err, "connection", "timed out")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%v does not wrap context.DeadlineExceeded", err)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	t.Parallel()
	p := blackhole(t)
	dnsSrv := validatetest.NewDNSServer(t)
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: p})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := v.Validate(ctx, "http-01", "ip", "127.0.0.1", token, keyAuth)
	wantProblem(t, err, "connection", "cancelled")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
}

func digest(keyAuth string) string {
	d := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(d[:])
}

func TestDNS01(t *testing.T) {
	t.Parallel()
	const name = "_acme-challenge.example.test"
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, strings.Repeat(strconv.Itoa(i%10), 100))
		}
		return out
	}
	tests := []struct {
		name     string
		value    string
		setup    func(s *validatetest.DNSServer)
		resolver func(t *testing.T) string
		wantType string
		detail   string
	}{
		{
			name: "success", value: "example.test",
			setup: func(s *validatetest.DNSServer) { s.SetTXT(name, digest(keyAuth)) },
		},
		{
			name: "case-insensitive name", value: "EXAMPLE.test",
			setup: func(s *validatetest.DNSServer) { s.SetTXT(name, digest(keyAuth)) },
		},
		{
			name: "one of several values", value: "example.test",
			setup: func(s *validatetest.DNSServer) {
				s.SetTXT(name, "stale", digest("other"))
				s.AddTXT(name, digest(keyAuth))
			},
		},
		{
			name: "truncated answer retried over TCP", value: "example.test",
			setup: func(s *validatetest.DNSServer) {
				s.SetTXT(name, append(many(40), digest(keyAuth))...)
			},
		},
		{
			name: "wrong value", value: "example.test",
			setup:    func(s *validatetest.DNSServer) { s.SetTXT(name, "wrong-value") },
			wantType: "unauthorized", detail: `found 1 TXT record(s), none is the expected`,
		},
		{
			name: "many wrong values", value: "example.test",
			setup:    func(s *validatetest.DNSServer) { s.SetTXT(name, "a", "b", "c", "d", "e") },
			wantType: "unauthorized", detail: `found 5 TXT record(s), none is the expected`,
		},
		{
			name: "cleared record", value: "example.test",
			setup: func(s *validatetest.DNSServer) {
				s.SetTXT(name, digest(keyAuth))
				s.ClearTXT(name)
			},
			wantType: "unauthorized", detail: "no TXT record at _acme-challenge.example.test",
		},
		{
			name: "no TXT at existing name", value: "example.test",
			setup:    func(s *validatetest.DNSServer) { s.SetDefaultA(localhost) },
			wantType: "unauthorized", detail: "no TXT record at _acme-challenge.example.test",
		},
		{
			name: "resolver unreachable", value: "example.test",
			resolver: func(t *testing.T) string {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				pc.Close()
				return pc.LocalAddr().String()
			},
			wantType: "dns", detail: "looking up TXT for _acme-challenge.example.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dnsSrv := validatetest.NewDNSServer(t)
			if tt.setup != nil {
				tt.setup(dnsSrv)
			}
			var cfg validate.Config
			if tt.resolver != nil {
				cfg.Resolver = tt.resolver(t)
				cfg.Timeout = time.Second
			}
			v := newValidator(t, dnsSrv, cfg)
			err := v.Validate(t.Context(), "dns-01", "dns", tt.value, token, keyAuth)
			wantProblem(t, err, tt.wantType, tt.detail)
		})
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	dnsSrv := validatetest.NewDNSServer(t)
	v := newValidator(t, dnsSrv, validate.Config{})
	tests := []struct {
		name                                   string
		challenge, identType, value, tok, kAth string
		detail                                 string
	}{
		{"unknown challenge", "http-02", "dns", "example.test", token, keyAuth, "unsupported challenge type"},
		{"unknown identifier type", "http-01", "email", "a@example.test", token, keyAuth, "unsupported identifier type"},
		{"dns-01 for ip", "dns-01", "ip", "127.0.0.1", token, keyAuth, "not defined for ip identifiers"},
		{"wildcard name", "http-01", "dns", "*.example.test", token, keyAuth, "invalid dns identifier"},
		{"bad name", "http-01", "dns", "exa mple.test", token, keyAuth, "invalid dns identifier"},
		{"empty label", "dns-01", "dns", "example..test", token, keyAuth, "invalid dns identifier"},
		{"ip as dns", "http-01", "dns", "127.0.0.1", token, keyAuth, "is an IP address"},
		{"bad ip", "http-01", "ip", "127.0.0.256", token, keyAuth, "invalid ip identifier"},
		{"ip with zone", "http-01", "ip", "fe80::1%eth0", token, keyAuth, "invalid ip identifier"},
		{"token with slash", "http-01", "dns", "example.test", "../x", keyAuth, "invalid token"},
		{"empty key authorization", "http-01", "dns", "example.test", token, "", "empty key authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Validate(t.Context(), tt.challenge, tt.identType, tt.value, tt.tok, tt.kAth)
			wantProblem(t, err, "malformed", tt.detail)
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	if _, err := validate.New(validate.Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	bad := []struct {
		name string
		cfg  validate.Config
	}{
		{"negative HTTPPort", validate.Config{HTTPPort: -1}},
		{"HTTPPort too large", validate.Config{HTTPPort: 65536}},
		{"negative TLSPort", validate.Config{TLSPort: -443}},
		{"negative Timeout", validate.Config{Timeout: -time.Second}},
		{"negative MaxRedirects", validate.Config{MaxRedirects: -1}},
		{"negative MaxBody", validate.Config{MaxBody: -1}},
		{"resolver without port", validate.Config{Resolver: "127.0.0.1"}},
		{"resolver by name", validate.Config{Resolver: "dns.example:53"}},
		{"resolver port zero", validate.Config{Resolver: "127.0.0.1:0"}},
		{"resolver port too large", validate.Config{Resolver: "[::1]:70000"}},
		{"invalid deny prefix", validate.Config{Deny: []netip.Prefix{{}}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if v, err := validate.New(tt.cfg); err == nil {
				t.Errorf("New accepted %+v: %v", tt.cfg, v)
			}
		})
	}
}

// TestSetDenyWhileRunning: a deny list replaced on a running validator
// (a configuration reload) judges the next validation, and lifting it
// lets validation through again; an invalid prefix is refused.
func TestSetDenyWhileRunning(t *testing.T) {
	t.Parallel()
	port := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(keyAuth)) }))
	v := newValidator(t, validatetest.NewDNSServer(t), validate.Config{HTTPPort: port})
	wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "", "")
	if err := v.SetDeny([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "rejectedIdentifier", "validation to 127.0.0.1 is denied by policy")
	if err := v.SetDeny([]netip.Prefix{{}}); err == nil {
		t.Fatal("an invalid prefix was accepted")
	}
	wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "rejectedIdentifier", "denied by policy")
	if err := v.SetDeny(nil); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "", "")
}
