package validate_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/certwright/certwright/internal/acme/validate"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
)

// metadataBody is what the fake cloud metadata service answers; no byte of
// it may reach the ACME client.
const metadataBody = "ami-id\ninstance-id\niam/security-credentials/SECRETROLE AKIAEXAMPLEKEY"

// serveOn starts an HTTP server with h on addr ("ip:port"), skipping the
// test when the address cannot be bound (127.0.0.x other than .1 are
// local on Linux but not everywhere).
func serveOn(t *testing.T, addr string, h http.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return ln.Addr().(*net.TCPAddr).Port
}

// noMetadata fails when detail holds any recognisable part of metadataBody.
func noMetadata(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("validation succeeded against the metadata service")
	}
	for _, part := range []string{"ami-id", "instance-id", "SECRETROLE", "AKIA", "security-credentials", "iam/"} {
		if strings.Contains(err.Error(), part) {
			t.Fatalf("the challenge error echoes the target's body (%q): %v", part, err)
		}
	}
}

// TestHTTP01RedirectToMetadataNotEchoed is the reported attack: an ACME
// account validates 127.0.0.6, which redirects to a "metadata" service on
// 127.0.0.5. The redirect to another IP literal is refused, and when a
// redirect by name is followed the body still never appears in the error.
func TestHTTP01RedirectToMetadataNotEchoed(t *testing.T) {
	t.Parallel()
	var metaHits atomic.Int32
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			metaHits.Add(1)
			w.WriteHeader(code)
			w.Write([]byte(metadataBody))
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ok", status(http.StatusOK))
	mux.Handle("/forbidden", status(http.StatusForbidden))
	mux.Handle("/missing", status(http.StatusNotFound))
	port := serveOn(t, "127.0.0.5:0", mux)

	var target atomic.Value // the Location the attacker's server answers with
	serveOn(t, "127.0.0.6:"+strconv.Itoa(port), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.Load().(string), http.StatusFound)
	}))

	dnsSrv := validatetest.NewDNSServer(t)
	dnsSrv.SetA("attacker.test", netip.MustParseAddr("127.0.0.6"))
	dnsSrv.SetA("metadata.test", netip.MustParseAddr("127.0.0.5"))
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: port})

	t.Run("redirect to another IP literal is refused", func(t *testing.T) {
		target.Store("http://127.0.0.5/ok")
		before := metaHits.Load()
		err := v.Validate(t.Context(), "http-01", "ip", "127.0.0.6", token, keyAuth)
		wantProblem(t, err, "connection", "redirects may name an IP address only when it is the identifier being validated")
		noMetadata(t, err)
		if metaHits.Load() != before {
			t.Fatal("the metadata service was contacted")
		}
	})
	for _, path := range []string{"/ok", "/forbidden", "/missing"} {
		t.Run("redirect by name to "+path, func(t *testing.T) {
			target.Store("http://metadata.test" + path)
			err := v.Validate(t.Context(), "http-01", "dns", "attacker.test", token, keyAuth)
			wantProblem(t, err, "incorrectResponse", strconv.Itoa(len(metadataBody))+"-byte body")
			noMetadata(t, err)
		})
	}
	t.Run("direct", func(t *testing.T) {
		err := v.Validate(t.Context(), "http-01", "dns", "metadata.test", token, keyAuth)
		noMetadata(t, err)
	})
}

// TestHTTP01RedirectToDeniedLiteral: link-local and IPv4-mapped literals
// are refused as redirect targets, and an IP literal other than the
// identifier is refused even when its range is allowed.
func TestHTTP01RedirectToDeniedLiteral(t *testing.T) {
	t.Parallel()
	var target atomic.Value
	port := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/self" {
			w.Write([]byte(keyAuth))
			return
		}
		http.Redirect(w, r, target.Load().(string), http.StatusFound)
	}))
	dnsSrv := validatetest.NewDNSServer(t)
	dnsSrv.SetDefaultA(localhost)
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: port})
	for _, tt := range []struct{ ident, location, detail string }{
		{"127.0.0.1", "http://169.254.169.254/latest/meta-data/", "redirects may name an IP address only"},
		{"127.0.0.1", "http://[::ffff:169.254.169.254]/latest/meta-data/", "redirects may name an IP address only"},
		{"127.0.0.1", "http://[::ffff:a9fe:a9fe]/", "redirects may name an IP address only"},
		{"127.0.0.1", "http://[fe80::1]/", "redirects may name an IP address only"},
		{"127.0.0.1", "http://127.0.0.2/", "redirects may name an IP address only"},
		{"example.test", "http://127.0.0.1/self", "redirects may name an IP address only"},
	} {
		t.Run(tt.location, func(t *testing.T) {
			target.Store(tt.location)
			typ := "ip"
			if _, err := netip.ParseAddr(tt.ident); err != nil {
				typ = "dns"
			}
			err := v.Validate(t.Context(), "http-01", typ, tt.ident, token, keyAuth)
			wantProblem(t, err, "connection", tt.detail)
		})
	}
	t.Run("redirect to the identifier itself is followed", func(t *testing.T) {
		target.Store("http://127.0.0.1/self")
		wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "", "")
	})
}

// TestDefaultDeny: with no operator configuration, link-local, unspecified,
// multicast, broadcast and cloud metadata addresses are refused, as
// identifiers and as what a name resolves to (IPv4-mapped and NAT64 forms
// too); loopback stays allowed for the quick start.
func TestDefaultDeny(t *testing.T) {
	t.Parallel()
	dnsSrv := validatetest.NewDNSServer(t)
	port := serveOn(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(keyAuth)) }))
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: port, TLSPort: port})
	for _, ip := range []string{
		"169.254.169.254", "169.254.1.1", "fe80::1", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "239.255.255.250",
		"ff02::1", "255.255.255.255", "100.100.100.200", "192.0.0.192", "fd00:ec2::254", "64:ff9b::a9fe:a9fe",
	} {
		t.Run("ip "+ip, func(t *testing.T) {
			t.Parallel()
			for _, ch := range []string{"http-01", "tls-alpn-01"} {
				wantProblem(t, v.Validate(t.Context(), ch, "ip", ip, token, keyAuth), "rejectedIdentifier", "is denied by policy")
			}
		})
	}
	for name, addr := range map[string]string{
		"meta.test": "169.254.169.254", "mapped.test": "::ffff:169.254.169.254", "nat64.test": "64:ff9b::a9fe:a9fe",
		"alibaba.test": "100.100.100.200", "mixed.test": "127.0.0.1",
	} {
		dnsSrv.SetA(name, netip.MustParseAddr(addr))
	}
	dnsSrv.SetA("mixed.test", localhost, netip.MustParseAddr("169.254.169.254"))
	for _, name := range []string{"meta.test", "mapped.test", "nat64.test", "alibaba.test", "mixed.test"} {
		t.Run("name "+name, func(t *testing.T) {
			t.Parallel()
			wantProblem(t, v.Validate(t.Context(), "http-01", "dns", name, token, keyAuth), "rejectedIdentifier", "is denied by policy")
		})
	}
	t.Run("loopback allowed", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth), "", "")
	})
	t.Run("operator ranges add to the default", func(t *testing.T) {
		t.Parallel()
		v := newValidator(t, dnsSrv, validate.Config{HTTPPort: port, Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "10.1.2.3", token, keyAuth), "rejectedIdentifier", "is denied by policy")
		wantProblem(t, v.Validate(t.Context(), "http-01", "ip", "169.254.169.254", token, keyAuth), "rejectedIdentifier", "is denied by policy")
	})
}

// TestHTTP01MalformedResponseNotEchoed: a target that is not an HTTP
// server (its banner would appear in net/http's parse error) gets a
// generic error.
func TestHTTP01MalformedResponseNotEchoed(t *testing.T) {
	t.Parallel()
	ln, port := listen(t)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_SECRETBANNER\r\n\r\n"))
			c.Close()
		}
	}()
	dnsSrv := validatetest.NewDNSServer(t)
	v := newValidator(t, dnsSrv, validate.Config{HTTPPort: port})
	err := v.Validate(t.Context(), "http-01", "ip", "127.0.0.1", token, keyAuth)
	wantProblem(t, err, "connection", "not valid HTTP/1.1")
	if strings.Contains(err.Error(), "SECRETBANNER") || strings.Contains(err.Error(), "SSH-2.0") {
		t.Fatalf("the error echoes the target's bytes: %v", err)
	}
}

// TestDNS01DoesNotEchoTXT: wrong TXT values are counted, not quoted.
func TestDNS01DoesNotEchoTXT(t *testing.T) {
	t.Parallel()
	dnsSrv := validatetest.NewDNSServer(t)
	dnsSrv.SetTXT("_acme-challenge.example.test", "internal-secret-value")
	v := newValidator(t, dnsSrv, validate.Config{})
	err := v.Validate(t.Context(), "dns-01", "dns", "example.test", token, keyAuth)
	wantProblem(t, err, "unauthorized", "found 1 TXT record(s)")
	if strings.Contains(err.Error(), "internal-secret") {
		t.Fatalf("the error echoes the TXT record: %v", err)
	}
}
