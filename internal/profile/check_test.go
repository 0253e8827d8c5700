package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// rsaPub returns an RSA public key of the given modulus size. Policy only
// looks at the size, so no key is generated.
func rsaPub(bits int) *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return &rsa.PublicKey{N: n.Or(n, big.NewInt(1)), E: 65537}
}

func ecPub(t testing.TB, c elliptic.Curve) *ecdsa.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func edPub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustBuiltin(t *testing.T, name string) *Profile {
	t.Helper()
	p, ok := Builtin(name)
	if !ok {
		t.Fatalf("no built-in %q", name)
	}
	return p
}

func mustParse(t *testing.T, s string) *Profile {
	t.Helper()
	p, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	t.Parallel()
	p256 := ecPub(t, elliptic.P256())
	p384 := ecPub(t, elliptic.P384())
	p224 := ecPub(t, elliptic.P224())
	p521 := ecPub(t, elliptic.P521())
	ed := edPub(t)

	web := mustBuiltin(t, "web_server")
	client := mustBuiltin(t, "client_auth")
	code := mustBuiltin(t, "code_signing")
	internal := mustBuiltin(t, "internal_service")
	tenant := mustParse(t, tenantYAML)
	wild := mustParse(t, strings.Replace(minimalYAML, "{dns: {allow: true}}",
		"{dns: {allow: true, allow_wildcard: true, suffixes: [example.internal]}, max_sans: 2}", 1))

	type req = Request
	dns := func(names ...string) req { return req{PublicKey: p256, DNSNames: names} }
	tests := []struct {
		name      string
		p         *Profile
		r         req
		rule      string // "" for a request that passes
		value     string
		wantInMsg string
	}{
		// keys
		{"ecdsa p256 passes", web, req{PublicKey: p256, DNSNames: []string{"www.example.com"}}, "", "", ""},
		{"ecdsa p384 passes min 256", web, req{PublicKey: p384, DNSNames: []string{"www.example.com"}}, "", "", ""},
		{"rsa 2048 passes", web, req{PublicKey: rsaPub(2048), DNSNames: []string{"www.example.com"}}, "", "", ""},
		{"rsa 1024", web, req{PublicKey: rsaPub(1024), DNSNames: []string{"www.example.com"}}, RuleKeys, "RSA-1024", "RSA 1024-bit key below minimum 2048"},
		{"p224", web, req{PublicKey: p224, DNSNames: []string{"www.example.com"}}, RuleKeys, "ECDSA-224", "not supported"},
		{"p521", web, req{PublicKey: p521, DNSNames: []string{"www.example.com"}}, RuleKeys, "ECDSA-521", "not supported"},
		{"ed25519 not allowed", web, req{PublicKey: ed, DNSNames: []string{"www.example.com"}}, RuleKeys, "Ed25519-256", "Ed25519 keys are not allowed"},
		{"rsa on ecdsa-only profile", internal, req{PublicKey: rsaPub(4096), DNSNames: []string{"svc"}}, RuleKeys, "RSA-4096", "RSA keys are not allowed"},
		{"code signing rsa 2048", code, req{PublicKey: rsaPub(2048)}, RuleKeys, "RSA-2048", "below minimum 3072"},
		{"p256 below ecdsa min 384", tenant, req{PublicKey: p256, DNSNames: []string{"a.example.internal"}}, RuleKeys, "ECDSA-256", "below minimum 384"},
		{"nil key", web, req{DNSNames: []string{"www.example.com"}}, RuleKeys, "<nil>", "unsupported public key type"},
		{"empty rsa key", web, req{PublicKey: &rsa.PublicKey{}, DNSNames: []string{"www.example.com"}}, RuleKeys, "*rsa.PublicKey", "empty RSA"},
		{"short ed25519 key", web, req{PublicKey: ed25519.PublicKey{1, 2}, DNSNames: []string{"www.example.com"}}, RuleKeys, "ed25519.PublicKey", "2 bytes"},

		// names.dns
		{"suffix itself", tenant, req{PublicKey: p384, DNSNames: []string{"example.internal"}}, "", "", ""},
		{"below suffix", tenant, req{PublicKey: p384, DNSNames: []string{"a.b.example.internal", "api.svc.cluster.local"}}, "", "", ""},
		{"case-insensitive", tenant, req{PublicKey: p384, DNSNames: []string{"WWW.Example.Internal"}}, "", "", ""},
		{"outside suffix", tenant, req{PublicKey: p384, DNSNames: []string{"a.example.internal", "host.other.internal"}}, RuleDNS, "host.other.internal", "not under an allowed suffix"},
		{"label boundary", tenant, req{PublicKey: p384, DNSNames: []string{"badexample.internal"}}, RuleDNS, "badexample.internal", "not under an allowed suffix"},
		{"suffix as parent", tenant, req{PublicKey: p384, DNSNames: []string{"internal"}}, RuleDNS, "internal", "not under"},
		{"wildcard not allowed", tenant, req{PublicKey: p384, DNSNames: []string{"*.example.internal"}}, RuleDNS, "*.example.internal", "wildcard"},
		{"wildcard not allowed on web_server", web, dns("*.example.com"), RuleDNS, "*.example.com", "wildcard"},
		{"wildcard allowed", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"*.example.internal", "*.a.example.internal"}}, "", "", ""},
		{"wildcard outside suffix", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"*.badexample.internal"}}, RuleDNS, "*.badexample.internal", "not under"},
		{"wildcard not leftmost", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"a.*.example.internal"}}, RuleDNS, "a.*.example.internal", "malformed"},
		{"double wildcard", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"*.*.example.internal"}}, RuleDNS, "*.*.example.internal", "malformed"},
		{"partial wildcard", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"w*.example.internal"}}, RuleDNS, "w*.example.internal", "malformed"},
		{"leading hyphen", web, dns("-a.example.com"), RuleDNS, "-a.example.com", "malformed"},
		{"empty label", web, dns("a..example.com"), RuleDNS, "a..example.com", "empty label"},
		{"trailing dot", web, dns("example.com."), RuleDNS, "example.com.", "empty label"},
		{"underscore", web, dns("_acme.example.com"), RuleDNS, "_acme.example.com", "malformed"},
		{"long label", web, dns(strings.Repeat("a", 64) + ".com"), RuleDNS, strings.Repeat("a", 64) + ".com", "over 63"},
		{"long name", web, dns(strings.Repeat("a.", 127) + "com"), RuleDNS, strings.Repeat("a.", 127) + "com", "over 253"},
		{"ip as dns", web, dns("10.0.0.1"), RuleDNS, "10.0.0.1", "IP SANs"},
		{"kelvin sign", tenant, req{PublicKey: p384, DNSNames: []string{"\u212a.example.internal"}}, RuleDNS, "\u212a.example.internal", "malformed"},
		{"dns not allowed", code, req{PublicKey: rsaPub(3072), DNSNames: []string{"example.com"}}, RuleDNS, "example.com", "not allowed"},

		// names.ip
		{"ip any", web, req{PublicKey: p256, IPAddresses: []net.IP{net.ParseIP("192.0.2.1"), net.ParseIP("2001:db8::1")}}, "", "", ""},
		{"ip in range", tenant, req{PublicKey: p384, IPAddresses: []net.IP{net.ParseIP("10.1.2.3"), net.IPv4(10, 9, 9, 9).To4(), net.ParseIP("2001:db8:1::5")}}, "", "", ""},
		{"ip outside range", tenant, req{PublicKey: p384, IPAddresses: []net.IP{net.ParseIP("10.1.2.3"), net.ParseIP("192.168.1.1")}}, RuleIP, "192.168.1.1", "not in an allowed range"},
		{"ipv6 outside range", tenant, req{PublicKey: p384, IPAddresses: []net.IP{net.ParseIP("2001:db9::1")}}, RuleIP, "2001:db9::1", "not in an allowed range"},
		{"malformed ip", tenant, req{PublicKey: p384, IPAddresses: []net.IP{{1, 2, 3}}}, RuleIP, "?010203", "malformed"},
		{"ip not allowed", client, req{PublicKey: p256, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}, RuleIP, "192.0.2.1", "not allowed"},

		// names.email
		{"email allowed", client, req{PublicKey: p256, EmailAddresses: []string{"Alice.Smith+tls@Example.com"}}, "", "", ""},
		{"email in domain", tenant, req{PublicKey: p384, EmailAddresses: []string{"bob@example.org", "ops@mail.example.org"}}, "", "", ""},
		{"email outside domain", tenant, req{PublicKey: p384, EmailAddresses: []string{"bob@evil.org"}}, RuleEmail, "bob@evil.org", "not in an allowed domain"},
		{"email label boundary", tenant, req{PublicKey: p384, EmailAddresses: []string{"bob@badexample.org"}}, RuleEmail, "bob@badexample.org", "not in an allowed domain"},
		{"email malformed", client, req{PublicKey: p256, EmailAddresses: []string{"bob"}}, RuleEmail, "bob", "malformed"},
		{"email quoted local part", client, req{PublicKey: p256, EmailAddresses: []string{`"b c"@example.com`}}, RuleEmail, `"b c"@example.com`, "malformed"},
		{"email not allowed", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, EmailAddresses: []string{"bob@example.com"}}, RuleEmail, "bob@example.com", "not allowed"},

		// names.uri
		{"uri allowed", client, req{PublicKey: p256, URIs: []*url.URL{mustURL(t, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")}}, "", "", ""},
		{"uri under prefix", tenant, req{PublicKey: p384, URIs: []*url.URL{mustURL(t, "spiffe://example.org/ns/prod/sa/api")}}, "", "", ""},
		{"uri outside prefix", tenant, req{PublicKey: p384, URIs: []*url.URL{mustURL(t, "spiffe://example.org/ns/dev/sa/api")}}, RuleURI, "spiffe://example.org/ns/dev/sa/api", "allowed prefix"},
		{"uri host boundary", tenant, req{PublicKey: p384, URIs: []*url.URL{mustURL(t, "spiffe://example.org.evil/ns/prod/x")}}, RuleURI, "spiffe://example.org.evil/ns/prod/x", "allowed prefix"},
		{"uri other scheme", tenant, req{PublicKey: p384, URIs: []*url.URL{mustURL(t, "https://example.org/ns/prod/x")}}, RuleURI, "https://example.org/ns/prod/x", "allowed prefix"},
		{"uri dot segments", tenant, req{PublicKey: p384, URIs: []*url.URL{mustURL(t, "spiffe://example.org/ns/prod/../../admin")}}, RuleURI, "spiffe://example.org/ns/prod/../../admin", "malformed"},
		{"uri relative", client, req{PublicKey: p256, URIs: []*url.URL{mustURL(t, "/just/a/path")}}, RuleURI, "/just/a/path", "no scheme"},
		{"uri nil", client, req{PublicKey: p256, URIs: []*url.URL{nil}}, RuleURI, "<nil>", "malformed"},
		{"uri not allowed", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, URIs: []*url.URL{mustURL(t, "spiffe://example.org/x")}}, RuleURI, "spiffe://example.org/x", "not allowed"},

		// names.require_san, names.max_sans
		{"missing SAN", web, req{PublicKey: p256, Subject: pkix.Name{CommonName: "www.example.com"}}, RuleRequireSAN, "", "at least one"},
		{"SAN optional", client, req{PublicKey: p256, Subject: pkix.Name{CommonName: "alice"}}, "", "", ""},
		{"too many SANs", wild, req{PublicKey: rsaPub(2048), DNSNames: []string{"a.example.internal", "b.example.internal", "c.example.internal"}}, RuleMaxSANs, "3", "exceed the maximum 2"},

		// subject_fields
		{"allowed subject", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, Subject: pkix.Name{CommonName: "example.com", Organization: []string{"Example"}, Country: []string{"NL"}}}, "", "", ""},
		{"serial number not allowed", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, Subject: pkix.Name{CommonName: "example.com", SerialNumber: "42"}}, RuleSubjectFields, "serial_number", "not allowed"},
		{"country not allowed", internal, req{PublicKey: p256, DNSNames: []string{"svc"}, Subject: pkix.Name{Country: []string{"NL"}}}, RuleSubjectFields, "country", "not allowed"},
		{"unknown OID in Names", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, Subject: pkix.Name{Names: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@example.com"}}}}, RuleSubjectFields, "1.2.840.113549.1.9.1", "not allowed"},
		{"known OID in ExtraNames", internal, req{PublicKey: p256, DNSNames: []string{"svc"}, Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 9}, Value: "Main St 1"}}}}, RuleSubjectFields, "street_address", "not allowed"},

		// max_validity_days
		{"validity at max", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, ValidityDays: 365}, "", "", ""},
		{"validity too long", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, ValidityDays: 400}, RuleMaxValidity, "400", "exceeds the maximum 365"},
		{"validity negative", web, req{PublicKey: p256, DNSNames: []string{"example.com"}, ValidityDays: -1}, RuleMaxValidity, "-1", "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Check(tt.r)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("Check = %v (%T), want *Violation of %s", err, err, tt.rule)
			}
			if v.Rule != tt.rule || v.Value != tt.value || v.Profile != tt.p.Name {
				t.Fatalf("Violation{Profile %q, Rule %q, Value %q}, want {%q, %q, %q}: %v", v.Profile, v.Rule, v.Value, tt.p.Name, tt.rule, tt.value, err)
			}
			if !strings.Contains(v.Message, tt.wantInMsg) {
				t.Errorf("message %q does not contain %q", v.Message, tt.wantInMsg)
			}
			if want := "profile " + tt.p.Name + ": rule " + tt.rule + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
		})
	}
}

func TestViolationMessage(t *testing.T) {
	t.Parallel()
	err := mustBuiltin(t, "web_server").Check(Request{PublicKey: rsaPub(1024), DNSNames: []string{"example.com"}})
	const want = "profile web_server: rule keys: RSA 1024-bit key below minimum 2048"
	if err == nil || err.Error() != want {
		t.Fatalf("Check = %v, want %q", err, want)
	}
}

// TestCheckCSR runs the policy on requests as the issue path builds them
// from a parsed, signature-checked CSR.
func TestCheckCSR(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fromCSR := func(t *testing.T, tmpl *x509.CertificateRequest) Request {
		t.Helper()
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.ParseCSR(der)
		if err != nil {
			t.Fatal(err)
		}
		return Request{
			PublicKey: csr.PublicKey, Subject: csr.Subject, DNSNames: csr.DNSNames,
			IPAddresses: csr.IPAddresses, EmailAddresses: csr.EmailAddresses, URIs: csr.URIs,
		}
	}
	web := mustBuiltin(t, "web_server")

	good := fromCSR(t, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "www.example.com", Organization: []string{"Example"}, Locality: []string{"Delft"}},
		DNSNames:    []string{"www.example.com", "example.com"},
		IPAddresses: []net.IP{net.ParseIP("192.0.2.10")},
	})
	if err := web.Check(good); err != nil {
		t.Fatalf("good CSR: %v", err)
	}

	// openssl puts emailAddress in the subject unless told otherwise.
	withEmail := fromCSR(t, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "www.example.com", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "admin@example.com"},
		}},
		DNSNames: []string{"www.example.com"},
	})
	var v *Violation
	if err := web.Check(withEmail); !errors.As(err, &v) || v.Rule != RuleSubjectFields || v.Value != "1.2.840.113549.1.9.1" {
		t.Fatalf("CSR with emailAddress: %v", err)
	}
}

func TestValidity(t *testing.T) {
	t.Parallel()
	web := mustBuiltin(t, "web_server")
	tests := []struct {
		days int
		want time.Duration
		bad  bool
	}{
		{0, 365 * 24 * time.Hour, false},
		{1, 24 * time.Hour, false},
		{30, 30 * 24 * time.Hour, false},
		{365, 365 * 24 * time.Hour, false},
		{366, 0, true},
		{-5, 0, true},
		{1 << 40, 0, true},
	}
	for _, tt := range tests {
		got, err := web.Validity(tt.days)
		if tt.bad {
			var v *Violation
			if !errors.As(err, &v) || v.Rule != RuleMaxValidity {
				t.Errorf("Validity(%d) = %v, %v; want a %s violation", tt.days, got, err, RuleMaxValidity)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Validity(%d) = %v, %v; want %v", tt.days, got, err, tt.want)
		}
	}
}

func TestUsages(t *testing.T) {
	t.Parallel()
	rsaKey := rsaPub(2048)
	ecKey := ecPub(t, elliptic.P256())
	edKey := edPub(t)

	every := mustBuiltin(t, "web_server")
	every.Keys = append(every.Keys, KeyRule{pki.FamilyEd25519, 0})
	every.KeyUsage = []string{"digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"}
	// time_stamping (opt-in, alone) and ocsp_signing (never) cannot be in
	// a profile with other EKUs; see eku_policy_test.go.
	every.ExtKeyUsage = []string{"server_auth", "client_auth", "code_signing", "email_protection"}
	if err := every.Validate(); err != nil {
		t.Fatal(err)
	}
	const (
		ds = x509.KeyUsageDigitalSignature
		cc = x509.KeyUsageContentCommitment
		ke = x509.KeyUsageKeyEncipherment
		de = x509.KeyUsageDataEncipherment
		ka = x509.KeyUsageKeyAgreement
	)
	tests := []struct {
		profile string
		p       *Profile
		key     crypto.PublicKey
		ku      x509.KeyUsage
		eku     []x509.ExtKeyUsage
	}{
		{"web_server", mustBuiltin(t, "web_server"), rsaKey, ds | ke, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"web_server", mustBuiltin(t, "web_server"), ecKey, ds, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"web_server", mustBuiltin(t, "web_server"), edKey, ds, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"client_auth", mustBuiltin(t, "client_auth"), rsaKey, ds, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"client_auth", mustBuiltin(t, "client_auth"), ecKey, ds | ka, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"client_auth", mustBuiltin(t, "client_auth"), edKey, ds, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"code_signing", mustBuiltin(t, "code_signing"), rsaKey, ds, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}},
		{"internal_service", mustBuiltin(t, "internal_service"), ecKey, ds | ka, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{"every/rsa", every, rsaKey, ds | cc | ke | de, nil},
		{"every/ecdsa", every, ecKey, ds | cc | ka, nil},
		{"every/ed25519", every, edKey, ds | cc, nil},
		{"every/unknown key", every, "not a key", ds | cc, nil},
	}
	allEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning,
		x509.ExtKeyUsageEmailProtection}
	for _, tt := range tests {
		ku, eku := tt.p.Usages(tt.key)
		if tt.eku == nil {
			tt.eku = allEKU
		}
		if ku != tt.ku || !slices.Equal(eku, tt.eku) {
			t.Errorf("%s Usages(%T) = %b, %v; want %b, %v", tt.profile, tt.key, ku, eku, tt.ku, tt.eku)
		}
	}
}

func TestDefaultKeyAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule KeyRule
		want pki.KeyAlgorithm
	}{
		{KeyRule{pki.FamilyRSA, 2048}, pki.RSA2048},
		{KeyRule{pki.FamilyRSA, 2049}, pki.RSA3072},
		{KeyRule{pki.FamilyRSA, 3072}, pki.RSA3072},
		{KeyRule{pki.FamilyRSA, 4096}, pki.RSA4096},
		{KeyRule{pki.FamilyECDSA, 256}, pki.ECDSAP256},
		{KeyRule{pki.FamilyECDSA, 384}, pki.ECDSAP384},
		{KeyRule{pki.FamilyEd25519, 0}, pki.Ed25519},
		{KeyRule{pki.FamilyEd25519, 256}, pki.Ed25519},
	}
	for _, tt := range tests {
		p := mustBuiltin(t, "web_server")
		p.Keys = []KeyRule{tt.rule, {pki.FamilyRSA, 4096}}
		if tt.rule.Algorithm == pki.FamilyRSA {
			p.Keys[1] = KeyRule{pki.FamilyECDSA, 384}
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", tt.rule, err)
		}
		got := p.DefaultKeyAlgorithm()
		if got != tt.want {
			t.Errorf("%+v: DefaultKeyAlgorithm = %q, want %q", tt.rule, got, tt.want)
		}
		if err := p.AllowsAlgorithm(got); err != nil {
			t.Errorf("%+v: AllowsAlgorithm(%q): %v", tt.rule, got, err)
		}
	}
	if got := (&Profile{}).DefaultKeyAlgorithm(); got != "" {
		t.Errorf("profile without keys: DefaultKeyAlgorithm = %q", got)
	}
}

func TestAllowsAlgorithm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		profile string
		alg     pki.KeyAlgorithm
		value   string // "" when allowed
	}{
		{"web_server", pki.ECDSAP256, ""},
		{"web_server", pki.ECDSAP384, ""},
		{"web_server", pki.RSA2048, ""},
		{"web_server", pki.Ed25519, "Ed25519-256"},
		{"code_signing", pki.RSA2048, "RSA-2048"},
		{"code_signing", pki.RSA4096, ""},
		{"internal_service", pki.RSA4096, "RSA-4096"},
		{"internal_service", "rsa-1024", "rsa-1024"},
		{"internal_service", "", ""},
	}
	for _, tt := range tests {
		err := mustBuiltin(t, tt.profile).AllowsAlgorithm(tt.alg)
		if tt.value == "" && tt.alg != "" {
			if err != nil {
				t.Errorf("%s AllowsAlgorithm(%q): %v", tt.profile, tt.alg, err)
			}
			continue
		}
		var v *Violation
		if !errors.As(err, &v) || v.Rule != RuleKeys || v.Value != tt.value {
			t.Errorf("%s AllowsAlgorithm(%q) = %v, want a keys violation with value %q", tt.profile, tt.alg, err, tt.value)
		}
	}
}
