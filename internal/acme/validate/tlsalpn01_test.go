package validate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme/validate"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
)

var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// tlsServer serves cfg on 127.0.0.1 and records the SNI of each handshake.
func tlsServer(t *testing.T, cfg *tls.Config) (port int, sni func() []string) {
	t.Helper()
	var mu sync.Mutex
	var names []string
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		names = append(names, hello.ServerName)
		return nil, nil
	}
	ln, port := listen(t)
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
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() {
		tln.Close()
		wg.Wait()
	})
	return port, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

// customCert builds a tls-alpn-01 certificate for example.test and lets
// mutate spoil it.
func customCert(t *testing.T, mutate func(tmpl *x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte(keyAuth))
	ext, err := asn1.Marshal(d[:])
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		DNSNames:        []string{"example.test"},
		ExtraExtensions: []pkix.Extension{{Id: oidACMEIdentifier, Critical: true, Value: ext}},
	}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func challengeCert(t *testing.T, identType, value, keyAuth string) tls.Certificate {
	t.Helper()
	c, err := validate.ChallengeCert(identType, value, keyAuth)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSALPN01(t *testing.T) {
	t.Parallel()
	acme := []string{"acme-tls/1"}
	tests := []struct {
		name      string
		identType string
		value     string
		cert      func(t *testing.T) tls.Certificate
		protos    []string
		wantSNI   string
		wantType  string
		detail    string
	}{
		{
			name: "dns identifier", identType: "dns", value: "Example.Test",
			cert:   func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "example.test", keyAuth) },
			protos: acme, wantSNI: "example.test",
		},
		{
			name: "ip identifier", identType: "ip", value: "127.0.0.1",
			cert:   func(t *testing.T) tls.Certificate { return challengeCert(t, "ip", "127.0.0.1", keyAuth) },
			protos: acme, wantSNI: "1.0.0.127.in-addr.arpa",
		},
		{
			name: "server does not speak ALPN", identType: "dns", value: "example.test",
			cert:     func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "example.test", keyAuth) },
			wantType: "unauthorized", detail: `did not negotiate ALPN "acme-tls/1"`,
		},
		{
			name: "server offers other protocols only", identType: "dns", value: "example.test",
			cert:     func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "example.test", keyAuth) },
			protos:   []string{"h2", "http/1.1"},
			wantType: "tls", detail: "TLS handshake with 127.0.0.1",
		},
		{
			name: "extension not critical", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				return customCert(t, func(c *x509.Certificate) { c.ExtraExtensions[0].Critical = false })
			},
			protos: acme, wantType: "unauthorized", detail: "acmeIdentifier extension is not critical",
		},
		{
			name: "extension missing", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				return customCert(t, func(c *x509.Certificate) { c.ExtraExtensions = nil })
			},
			protos: acme, wantType: "unauthorized", detail: "no acmeIdentifier extension",
		},
		{
			name: "extension not an octet string", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				d := sha256.Sum256([]byte(keyAuth))
				return customCert(t, func(c *x509.Certificate) { c.ExtraExtensions[0].Value = d[:] })
			},
			protos: acme, wantType: "unauthorized", detail: "not an OCTET STRING of 32 bytes",
		},
		{
			name: "wrong digest", identType: "dns", value: "example.test",
			cert:   func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "example.test", "other.key") },
			protos: acme, wantType: "unauthorized", detail: "acmeIdentifier is not the SHA-256 of the key authorization",
		},
		{
			name: "extra SAN", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				return customCert(t, func(c *x509.Certificate) { c.DNSNames = append(c.DNSNames, "other.test") })
			},
			protos: acme, wantType: "unauthorized", detail: "subjectAltName has 2 entries",
		},
		{
			name: "extra SAN of another type", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				return customCert(t, func(c *x509.Certificate) { c.EmailAddresses = []string{"a@example.test"} })
			},
			protos: acme, wantType: "unauthorized", detail: "subjectAltName has 2 entries",
		},
		{
			name: "other name", identType: "dns", value: "example.test",
			cert:   func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "other.test", keyAuth) },
			protos: acme, wantType: "unauthorized", detail: "not the single dNSName example.test",
		},
		{
			name: "dns SAN for ip identifier", identType: "ip", value: "127.0.0.1",
			cert:   func(t *testing.T) tls.Certificate { return challengeCert(t, "dns", "example.test", keyAuth) },
			protos: acme, wantType: "unauthorized", detail: "not the single iPAddress 127.0.0.1",
		},
		{
			name: "no SAN", identType: "dns", value: "example.test",
			cert: func(t *testing.T) tls.Certificate {
				return customCert(t, func(c *x509.Certificate) {
					c.DNSNames = nil
					c.Subject = pkix.Name{CommonName: "example.test"}
				})
			},
			protos: acme, wantType: "unauthorized", detail: "no subjectAltName extension",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port, sni := tlsServer(t, &tls.Config{
				Certificates: []tls.Certificate{tt.cert(t)},
				NextProtos:   tt.protos,
			})
			dnsSrv := validatetest.NewDNSServer(t)
			dnsSrv.SetDefaultA(localhost)
			v := newValidator(t, dnsSrv, validate.Config{TLSPort: port})
			err := v.Validate(t.Context(), "tls-alpn-01", tt.identType, tt.value, token, keyAuth)
			wantProblem(t, err, tt.wantType, tt.detail)
			if tt.wantSNI != "" {
				if got := sni(); len(got) != 1 || got[0] != tt.wantSNI {
					t.Errorf("SNI %q, want [%q]", got, tt.wantSNI)
				}
			}
		})
	}
}

func TestTLSALPN01IPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	cert := challengeCert(t, "ip", "::1", keyAuth)
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"acme-tls/1"}})
	const wantSNI = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
	sni := make(chan string, 1)
	go func() {
		c, err := tln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		_ = tc.Handshake()
		sni <- tc.ConnectionState().ServerName
	}()
	t.Cleanup(func() { tln.Close() })
	v := newValidator(t, validatetest.NewDNSServer(t), validate.Config{TLSPort: ln.Addr().(*net.TCPAddr).Port})
	wantProblem(t, v.Validate(t.Context(), "tls-alpn-01", "ip", "::1", token, keyAuth), "", "")
	if got := <-sni; got != wantSNI {
		t.Errorf("SNI %q, want %q", got, wantSNI)
	}
}

func TestChallengeCert(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ identType, value string }{{"dns", "example.test"}, {"ip", "192.0.2.1"}, {"ip", "2001:db8::1"}} {
		c, err := validate.ChallengeCert(tt.identType, tt.value, keyAuth)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.identType, tt.value, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if n := len(leaf.DNSNames) + len(leaf.IPAddresses); n != 1 {
			t.Errorf("%s %s: %d SANs", tt.identType, tt.value, n)
		}
		if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Errorf("%s %s: key is %T", tt.identType, tt.value, leaf.PublicKey)
		}
		if len(leaf.UnhandledCriticalExtensions) != 1 || !leaf.UnhandledCriticalExtensions[0].Equal(oidACMEIdentifier) {
			t.Errorf("%s %s: critical extensions %v", tt.identType, tt.value, leaf.UnhandledCriticalExtensions)
		}
	}
	if _, err := validate.ChallengeCert("dns", "*.example.test", keyAuth); err == nil {
		t.Error("ChallengeCert accepted a wildcard name")
	}
}
