package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/netsource"
)

// TestLimitKeyIPv6By64: the refusal budget of an IPv6 source is its /64,
// so cycling through the addresses of one subscriber's block buys nothing;
// IPv4 (also IPv4-mapped) counts per address.
func TestLimitKeyIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8:1:2:aaaa::1":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ff::9": "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"2001:db8:1:3::1":         "2001:db8:1:3::/64",
		"192.0.2.1":               "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"not-an-address":          "not-an-address",
	} {
		if got := netsource.Key(in); got != want {
			t.Errorf("netsource.Key(%q) = %q, want %q", in, got, want)
		}
	}

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := netsource.NewLimiter(func() time.Time { return now }, 0.01, 3)
	for i := range 3 {
		l.Fail("2001:db8:1:2::" + string(rune('a'+i)))
	}
	if l.Wait("2001:db8:1:2:dead:beef:0:1") <= 0 {
		t.Error("three refusals from three addresses of one /64: a fourth address of it is not limited")
	}
	if l.Wait("2001:db8:1:3::a") != 0 || l.Wait("192.0.2.1") != 0 {
		t.Error("another /64 or an IPv4 source is limited by the first /64's refusals")
	}
}

// tAuth is an Authenticator that accepts the token "good" and the client
// certificate with serial 1, and counts certificate verifications.
type tAuth struct {
	mu                sync.Mutex
	tokens, certCalls int
}

func (a *tAuth) Authenticate(_ context.Context, token string) (authz.Principal, error) {
	a.mu.Lock()
	a.tokens++
	a.mu.Unlock()
	if token == "good" {
		return authz.System(), nil
	}
	return authz.Principal{}, &authz.AuthError{Reason: "unknown token"}
}

func (a *tAuth) AuthenticateCertificate(_ context.Context, leaf *x509.Certificate, _ []*x509.Certificate) (authz.Principal, error) {
	a.mu.Lock()
	a.certCalls++
	a.mu.Unlock()
	if leaf.SerialNumber.Int64() == 1 {
		return authz.System(), nil
	}
	return authz.Principal{}, &authz.AuthError{Reason: "unknown certificate"}
}

type tRefusals struct{}

func (tRefusals) Add(audit.Refusal) {}

// TestOverBudgetSourceIsServedWithValidCredentials: a source that used up
// its refusals is served when its token or client certificate verifies;
// what fails gets 429, a request without credentials without any lookup,
// and a refused client certificate is verified at most once per
// connection (the expensive part stays bounded).
func TestOverBudgetSourceIsServedWithValidCredentials(t *testing.T) {
	auth := &tAuth{}
	h := &Handler{
		d: Deps{Log: slog.New(slog.DiscardHandler), Clock: clock.Real{}, Auth: auth, Refusals: tRefusals{}, MaxBody: 1 << 10},
		// One refusal back per 100 s: over budget for the whole test.
		limiter: netsource.NewLimiter(time.Now, 0.01, 2),
	}
	srv := h.wrap(route("GET", "/api/v1/x", "x.read", func(w http.ResponseWriter, _ *http.Request, _ authz.Principal) error {
		w.WriteHeader(http.StatusOK)
		return nil
	}, authz.PermCARead))
	type conn struct{ ctx context.Context }
	newConn := func() conn { return conn{ConnContext(context.Background(), nil)} }
	do := func(c conn, token string, serial int64) int {
		t.Helper()
		r := httptest.NewRequest("GET", "/api/v1/x", nil)
		r.RemoteAddr = "192.0.2.7:40000"
		if c.ctx != nil {
			r = r.WithContext(c.ctx)
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if serial != 0 {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{SerialNumber: big.NewInt(serial)}}}
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w.Code
	}
	c := newConn()
	for i, want := range []int{401, 401, 429} {
		if got := do(c, "bad", 0); got != want {
			t.Fatalf("bad token #%d: %d, want %d", i+1, got, want)
		}
	}
	if got := do(c, "good", 0); got != http.StatusOK {
		t.Errorf("valid token from the over-budget source: %d, want 200", got)
	}
	tokens := auth.tokens
	if got := do(c, "", 0); got != http.StatusTooManyRequests || auth.tokens != tokens || auth.certCalls != 0 {
		t.Errorf("no credentials: %d after %d lookups, want 429 with none", got, auth.tokens-tokens+auth.certCalls)
	}

	bad := newConn()
	for i := range 3 {
		if got := do(bad, "", 2); got != http.StatusTooManyRequests {
			t.Errorf("refused certificate, request %d: %d, want 429", i+1, got)
		}
	}
	if auth.certCalls != 1 {
		t.Errorf("a refused certificate was verified %d times on one connection while over budget, want 1", auth.certCalls)
	}
	good := newConn()
	for i := range 2 {
		if got := do(good, "", 1); got != http.StatusOK {
			t.Errorf("valid certificate from the over-budget source, request %d: %d, want 200", i+1, got)
		}
	}
	before := auth.certCalls
	if got := do(conn{}, "", 1); got != http.StatusTooManyRequests || auth.certCalls != before {
		t.Errorf("certificate on a connection the API keeps no state for: %d after %d verifications, want 429 with none", got, auth.certCalls-before)
	}
}
