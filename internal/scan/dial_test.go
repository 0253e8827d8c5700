package scan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/discovery"
)

// selfSignedTLS is a certificate for name and its key.
func selfSignedTLS(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func targets(t *testing.T, specs ...string) []discovery.Target {
	t.Helper()
	ts, err := discovery.ParseTargets(specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// staticResolver answers every name with the same addresses: the DNS a
// test controls, as an in-process server would.
type staticResolver []netip.Addr

func (r staticResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return r, nil
}

// TestDialRefusesOutsideAllowList: a target outside the allow-list, and
// a hostname that resolves outside it, are refused before any
// connection is made; allowed by range, a name connects to the address
// checked.
func TestDialRefusesOutsideAllowList(t *testing.T) {
	t.Parallel()
	addr, accepted := goTLS(t, &tls.Config{Certificates: []tls.Certificate{selfSignedTLS(t, "svc.test")}})
	// The name resolves to the loopback server; only 10.9.0.0/16 is allowed.
	d := &Dialer{Allow: allowList(t, "10.9.0.0/16"), Resolver: staticResolver{netip.MustParseAddr("127.0.0.1")}, Timeout: time.Second}
	for _, spec := range []string{addr, "rebind.test:" + port(addr)} {
		if _, _, err := d.Dial(t.Context(), targets(t, spec)[0]); !errors.Is(err, discovery.ErrNotAllowed) {
			t.Errorf("Dial(%s) = %v, want ErrNotAllowed", spec, err)
		}
	}
	if _, _, err := d.Dial(t.Context(), targets(t, "rebind.test:"+port(addr))[0]); !strings.Contains(err.Error(), "resolves to 127.0.0.1") {
		t.Errorf("Dial(rebind.test) = %v, want the address named", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the server accepted %d connections from refused targets", n)
	}
	e := testEngine(t, EngineConfig{Allow: allowList(t, "127.0.0.1"), SkipRevocation: true,
		Resolver: staticResolver{netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("127.0.0.1")}})
	o := scanOne(t, e, "svc.test:"+port(addr))
	if !o.Reachable || o.Address != addr || o.Host != "svc.test" || o.Key() != "svc.test:"+port(addr) {
		t.Errorf("allowed name: reachable %v, address %s, host %s, key %s", o.Reachable, o.Address, o.Host, o.Key())
	}
}
