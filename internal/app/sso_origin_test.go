package app

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
)

// tExchangeAt exchanges a fresh token bound to origin at in, the request
// naming origin in Host, as a CLI (or a rogue forwarding its visitor's
// token) talking to origin sends it.
func (s *tSSO) tExchangeAt(t *testing.T, in *tInstance, origin string) tResp {
	t.Helper()
	binder := tBinder(t)
	return tExchange(t, in, origin, s.mintCLI(t, tBindingNonce(t, origin, binder)), binder)
}

// TestSSOExchangeBoundToPort: a CLI sign-in is bound to the server's
// origin, port included. A rogue on another port of one of the server's
// names (staging at pki.test:9443, a service on 127.0.0.1:9443) forwards
// a token bound to its origin, naming that origin in Host: refused. So
// is a name of the server at a port it does not serve (pki.test:443,
// nothing there but another service); the server's names at the port
// of its HTTPS listener are accepted, and so is acme.base_url's origin.
func TestSSOExchangeBoundToPort(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	_, port, err := net.SplitHostPort(in.origin())
	if err != nil {
		t.Fatal(err)
	}
	for _, origin := range []string{"127.0.0.1:9443", "localhost:9443", "pki.test:443", "pki.test:9443"} {
		if r := s.tExchangeAt(t, in, origin); r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "not known as") {
			t.Errorf("a token bound to %s, Host %s: %d %s, want 401 (not known as)", origin, origin, r.status, r.body)
		}
	}
	for _, origin := range []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("localhost", port), net.JoinHostPort("pki.test", port)} {
		if r := s.tExchangeAt(t, in, origin); r.status != http.StatusOK {
			t.Errorf("a token bound to %s, this server: %d %s", origin, r.status, r.body)
		}
	}

	// Behind a proxy on another port: acme.base_url's origin is the
	// server's too, that port only.
	behind := tNewSSOWith(t, "", func(c *config.Config) { c.ACME.BaseURL = "https://acme.example.test:9444" })
	if r := behind.tExchangeAt(t, behind.in, "acme.example.test:9444"); r.status != http.StatusOK {
		t.Errorf("a token bound to acme.base_url's origin: %d %s", r.status, r.body)
	}
	if r := behind.tExchangeAt(t, behind.in, "acme.example.test:443"); r.status != http.StatusUnauthorized {
		t.Errorf("a token bound to acme.base_url's host at another port: %d %s, want 401", r.status, r.body)
	}
}

// TestSSOReloadServerNames: the names a CLI sign-in may be bound to follow
// tls_names when a reload changes it: a name added is accepted from then
// on, a name removed refused.
func TestSSOReloadServerNames(t *testing.T) {
	t.Parallel()
	idp, provider := tSSOProvider(t)
	in, rl, logs, path := tReloadable(t, func(c *config.Config) { c.Auth.OIDC = []config.OIDCProvider{provider} })
	s := &tSSO{in: in, idp: idp}
	_, port, err := net.SplitHostPort(in.origin())
	if err != nil {
		t.Fatal(err)
	}
	added, removed := net.JoinHostPort("pki.example.internal", port), net.JoinHostPort("localhost", port)
	if r := s.tExchangeAt(t, in, added); r.status != http.StatusUnauthorized {
		t.Fatalf("%s before it is a name of the server: %d %s, want 401", added, r.status, r.body)
	}
	tRewriteConfig(t, path, in.app.cfg.DataDir, func(c *config.Config) { c.TLSNames = []string{"127.0.0.1", "pki.example.internal"} })
	changes, err := rl.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tChange(changes, "tls_names"); !ok || !c.Live {
		t.Fatalf("tls_names change %+v (found %v), want applied live; log:\n%s", c, ok, logs.String())
	}
	if r := s.tExchangeAt(t, in, added); r.status != http.StatusOK {
		t.Errorf("%s after the reload named it: %d %s", added, r.status, r.body)
	}
	if r := s.tExchangeAt(t, in, removed); r.status != http.StatusUnauthorized {
		t.Errorf("%s after the reload removed it: %d %s, want 401", removed, r.status, r.body)
	}
}
