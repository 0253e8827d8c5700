package app

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestDNSOnlyConstrainedCARefusesOtherNameTypes is the reproduction of
// issue 13 #14 through the API: a CA created with permitted_dns
// example.internal (ca create-intermediate --permit-dns example.internal)
// carries exclusions for every other name type, and the issuance path
// refuses IP:10.9.9.9, a URI and an email before signing, with nothing
// stored.
func TestDNSOnlyConstrainedCARefusesOtherNameTypes(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
		Name: "internal", Type: "intermediate", Parent: "root", CommonName: "Internal CA",
		Constraints: apitypes.NameConstraints{PermittedDNS: []string{"example.internal"}},
	}, nil)
	r := in.call("GET", "/api/v1/cas/internal/chain", nil)
	if r.status != http.StatusOK {
		t.Fatalf("chain: %d", r.status)
	}
	blk, _ := pem.Decode(r.body)
	if blk == nil {
		t.Fatal("chain: no PEM")
	}
	caCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(caCert.ExcludedIPRanges) != 2 || !caCert.PermittedDNSDomainsCritical {
		t.Errorf("CA excludes IP ranges %v (critical %v), want 0.0.0.0/0 and ::/0", caCert.ExcludedIPRanges, caCert.PermittedDNSDomainsCritical)
	}
	before := in.certCount()
	csrFor := func(dns []string, ips []net.IP, uris []*url.URL, emails []string) string {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "app.example.internal"}, DNSNames: dns, IPAddresses: ips, URIs: uris, EmailAddresses: emails,
		}, tECKey(t, elliptic.P256()))
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	spiffe, _ := url.Parse("spiffe://example.internal/deploy-admin")
	for _, tt := range []struct {
		name    string
		profile string
		csr     string
		names   string
	}{
		{"IP", "web_server", csrFor([]string{"app.example.internal"}, []net.IP{net.ParseIP("10.9.9.9")}, nil, nil), "10.9.9.9"},
		{"IPv6", "web_server", csrFor([]string{"app.example.internal"}, []net.IP{net.ParseIP("2001:db8::9")}, nil, nil), "2001:db8::9"},
		{"URI", "internal_service", csrFor([]string{"app.example.internal"}, nil, []*url.URL{spiffe}, nil), "spiffe://example.internal/deploy-admin"},
	} {
		r := in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: tt.csr, Profile: tt.profile, CA: "internal"})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", tt.name, r.status, tTrim(r.body))
			continue
		}
		if e := r.apiErr(t); !strings.Contains(e.Detail, "name constraints") || !strings.Contains(e.Detail, tt.names) {
			t.Errorf("%s: error %q does not say which name broke the CA's constraints", tt.name, e.Detail)
		}
	}
	if n := in.certCount(); n != before {
		t.Errorf("%d certificates after refusals, want %d", n, before)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: csrFor([]string{"app.example.internal"}, nil, nil, nil), Profile: "web_server", CA: "internal"}, nil)
}
