package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// tLogTo returns a logger writing into buf (read it once the instance has
// stopped).
func tLogTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncWriter{w: buf}, nil))
}

// TestServerCertificateFollowsTLSNames: a start with unchanged tls_names
// keeps the stored server certificate; a start with other names re-issues
// it for exactly those names and logs why; a reload calling
// EnsureServerCertificate does the same on the running server.
func TestServerCertificateFollowsTLSNames(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			var log1 bytes.Buffer
			in := tStartLogged(t, cfg, clock.Real{}, tLogTo(&log1))
			first := in.servedLeaf()
			if !sameNames(certNames(first), cfg.TLSNames) {
				t.Fatalf("served names %v, want tls_names %v", certNames(first), cfg.TLSNames)
			}
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(log1.String(), "tls_names changed") {
				t.Errorf("a start with unchanged tls_names logged a change:\n%s", log1.String())
			}

			cfg.TLSNames = []string{"pki.example.internal", "127.0.0.1"}
			var log2 bytes.Buffer
			in2 := tStartLogged(t, cfg, clock.Real{}, tLogTo(&log2))
			second := in2.servedLeaf()
			if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
				t.Fatal("tls_names changed but the old server certificate is still served")
			}
			if !sameNames(certNames(second), cfg.TLSNames) {
				t.Errorf("served names %v, want %v", certNames(second), cfg.TLSNames)
			}
			if err := second.VerifyHostname("pki.example.internal"); err != nil {
				t.Errorf("new certificate: %v", err)
			}
			// The reload path: same names change nothing, new names re-issue.
			ctx := context.Background()
			if err := in2.app.EnsureServerCertificate(ctx, []string{"127.0.0.1", "PKI.example.internal"}); err != nil {
				t.Fatal(err)
			}
			if s := in2.servedLeaf().SerialNumber; s.Cmp(second.SerialNumber) != 0 {
				t.Error("EnsureServerCertificate with the same names (other order and case) re-issued")
			}
			if err := in2.app.EnsureServerCertificate(ctx, []string{"bad name"}); err == nil {
				t.Error("EnsureServerCertificate accepted an invalid name")
			}
			if err := in2.app.EnsureServerCertificate(ctx, []string{"other.example.internal", "127.0.0.1"}); err != nil {
				t.Fatal(err)
			}
			third := in2.servedLeaf()
			if err := third.VerifyHostname("other.example.internal"); err != nil {
				t.Errorf("after EnsureServerCertificate: %v", err)
			}
			if err := in2.stop(); err != nil {
				t.Fatal(err)
			}
			logged := log2.String()
			for _, want := range []string{
				"server TLS certificate re-issued because tls_names changed",
				"names=pki.example.internal,127.0.0.1",
				"names=other.example.internal,127.0.0.1",
			} {
				if !strings.Contains(logged, want) {
					t.Errorf("log lacks %q:\n%s", want, logged)
				}
			}
		})
	}
}

// TestPublicURLChangeIsLogged: a start under a new public_http_url says
// that new certificates get the new URLs and old ones keep theirs, once;
// certificates issued afterwards carry the new URL.
func TestPublicURLChangeIsLogged(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, "")
	tInit(t, cfg, clock.Real{})
	start := func() (*tInstance, *bytes.Buffer) {
		var buf bytes.Buffer
		return tStartLogged(t, cfg, clock.Real{}, tLogTo(&buf)), &buf
	}
	in, log1 := start()
	old := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal"))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log1.String(), "public_http_url changed") {
		t.Fatalf("first start logged a public_http_url change:\n%s", log1)
	}

	cfg.PublicHTTPURL = "http://pki2.test:8080"
	in2, log2 := start()
	issued := in2.sign(tCSR(t, tECKey(t, elliptic.P256()), "app.example.internal"))
	if err := in2.stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"public_http_url changed", "old=http://pki.test:8080", "new=http://pki2.test:8080", "certificates issued before keep the old URLs"} {
		if !strings.Contains(log2.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log2)
		}
	}
	for _, c := range []struct {
		pem, base string
	}{{old.CertificatePEM, "http://pki.test:8080"}, {issued.CertificatePEM, "http://pki2.test:8080"}} {
		block, _ := pem.Decode([]byte(c.pem))
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if got := urlBase(leaf); got != c.base {
			t.Errorf("certificate %x: CRL URL under %q, want %q", leaf.SerialNumber, got, c.base)
		}
	}

	_, log3 := start()
	if strings.Contains(log3.String(), "public_http_url changed") {
		t.Errorf("the change was logged again on the next start:\n%s", log3)
	}
}

// TestACMEDirectories: the banner's directory URL is the default
// provisioner's, and the server answers it.
func TestACMEDirectories(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	dirs, err := in.app.ACMEDirectories(context.Background(), in.l.HTTPSURL)
	if err != nil {
		t.Fatal(err)
	}
	want := in.l.HTTPSURL + "/acme/" + DefaultACMEProvisioner + "/directory"
	if len(dirs) != 1 || dirs[0] != want {
		t.Fatalf("ACME directories %v, want [%s]", dirs, want)
	}
	resp, err := in.client.Get(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", dirs[0], resp.StatusCode)
	}
}

func TestStoreLocation(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{DataDir: "/var/lib/certwright"}
	if got, want := StoreLocation(cfg), "SQLite /var/lib/certwright/certwright.db"; got != want {
		t.Errorf("StoreLocation = %q, want %q", got, want)
	}
	cfg.DB = "sqlite://pki.db" // relative, as the store reads it
	if abs, _ := filepath.Abs("pki.db"); StoreLocation(cfg) != "SQLite "+abs {
		t.Errorf("StoreLocation = %q, want %q", StoreLocation(cfg), "SQLite "+abs)
	}
	cfg.DB = "postgres://certwright:s3cret-pw@db.internal:5432/pki?sslmode=verify-full"
	got := StoreLocation(cfg)
	if strings.Contains(got, "s3cret-pw") || !strings.HasPrefix(got, "PostgreSQL postgres://certwright:") || !strings.Contains(got, "db.internal:5432/pki") {
		t.Errorf("StoreLocation = %q, want the PostgreSQL URL with the password hidden", got)
	}
}

func TestIsTrial(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		org, url string
		want     bool
	}{
		{"", "", true},
		{"", "http://localhost:8080", true},
		{"", "http://[::1]:8080", true},
		{"Example", "", false},
		{"", "http://pki.example.internal:8080", false},
		{"", "http://10.0.0.5:8080", false},
	} {
		cfg := &config.Config{PublicHTTPURL: c.url}
		cfg.Init.Organization = c.org
		cfg.Defaults()
		if got := IsTrial(cfg); got != c.want {
			t.Errorf("IsTrial(org %q, url %q) = %v, want %v", c.org, c.url, got, c.want)
		}
	}
}

func TestClientHost(t *testing.T) {
	t.Parallel()
	defaults := []string{"localhost", "127.0.0.1", "::1"}
	for _, c := range []struct {
		addr  string
		names []string
		want  string
	}{
		{"127.0.0.1:8443", defaults, "127.0.0.1:8443"},
		{"0.0.0.0:8443", defaults, "127.0.0.1:8443"},
		{"[::1]:8443", defaults, "[::1]:8443"},
		{"127.0.0.1:8443", []string{"pki.example.internal", "localhost"}, "localhost:8443"},
		{"0.0.0.0:8443", []string{"pki.example.internal"}, "127.0.0.1:8443"},
		{"10.0.0.5:8443", []string{"pki.example.internal"}, "10.0.0.5:8443"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientHost(addr, c.names); got != c.want {
			t.Errorf("clientHost(%s, %v) = %s, want %s", c.addr, c.names, got, c.want)
		}
	}
}
