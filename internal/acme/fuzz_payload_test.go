package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/mail"
	"strings"
	"testing"
)

// FuzzCheckContacts feeds newAccount and account-update contacts. Accepted
// contacts are single mailto: addresses; refusals are problems with a
// status.
func FuzzCheckContacts(f *testing.F) {
	for _, s := range []string{
		"mailto:ops@example.com", "ops@example.com", "mailto:", "mailto:a@b", "mailto:a@b?subject=x", "mailto:a@b,c@d",
		"tel:+1555", "mailto:Ops <ops@example.com>", "MAILTO:ops@example.com", "mailto:ops@example.com\n", strings.Repeat("a", 400),
	} {
		f.Add(s, "")
		f.Add(s, "mailto:second@example.com")
	}
	f.Fuzz(func(t *testing.T, c1, c2 string) {
		contacts := []string{c1}
		if c2 != "" {
			contacts = append(contacts, c2)
		}
		err := checkContacts(contacts)
		if err != nil {
			p := AsProblem(err)
			if p == nil {
				t.Fatalf("error %v is not a problem", err)
			}
			if _, ok := errorStatus[p.Type]; !ok {
				t.Fatalf("problem type %q has no status", p.Type)
			}
			return
		}
		for _, c := range contacts {
			addr, ok := strings.CutPrefix(c, "mailto:")
			if !ok || len(c) > maxContactLen || strings.ContainsAny(addr, "?,\r\n") {
				t.Fatalf("accepted contact %q", c)
			}
			if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
				t.Fatalf("accepted contact %q that is not one address", c)
			}
		}
	})
}

// FuzzOrderValidity feeds newOrder's notBefore/notAfter: only the absent
// and the zero time are accepted.
func FuzzOrderValidity(f *testing.F) {
	for _, s := range []string{
		"", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00+00:00", "0001-01-01T01:00:00+01:00",
		"2030-01-01T00:00:00Z", "0001-01-01", "null", "0000-12-31T23:59:59Z", "0001-01-01T00:00:00.000000001Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		absentTime(s) // never panics; what it accepts is TestAbsentTime's
	})
}

// TestAbsentTime: the absent and the zero instant (in any spelling RFC 3339
// allows, as the step CLI sends it) count as absent; anything else is a
// validity request.
func TestAbsentTime(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"": true, "0001-01-01T00:00:00Z": true, "0001-01-01T00:00:00.000Z": true,
		"0001-01-01T00:00:00+00:00": true, "0001-01-01T01:00:00+01:00": true,
		"2030-01-01T00:00:00Z": false, "0001-01-01": false, "null": false,
		"0000-12-31T23:59:59Z": false, "0001-01-01T00:00:00.000000001Z": false, "0001-01-01T00:00:00": false,
	} {
		if got := absentTime(s); got != want {
			t.Errorf("absentTime(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzFinalizeCSR feeds finalize's CSR: parsing and the identifier and
// subject rules must not panic; every identifier named comes from the
// CSR's SANs; cut to its common name, the subject holds nothing else.
func FuzzFinalizeCSR(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, tmpl := range []*x509.CertificateRequest{
		{Subject: pkix.Name{CommonName: "a.example.test"}, DNSNames: []string{"a.example.test", "b.example.test"}},
		{Subject: pkix.Name{CommonName: "a.example.test", Organization: []string{"O"}, Country: []string{"US"}}, DNSNames: []string{"a.example.test"}},
		{Subject: pkix.Name{CommonName: "192.0.2.1"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}},
		{Subject: pkix.Name{CommonName: "other.test"}, DNSNames: []string{"a.example.test"}},
		{EmailAddresses: []string{"a@example.test"}},
		{DNSNames: []string{"A.Example.TEST."}, IPAddresses: []net.IP{net.ParseIP("::ffff:192.0.2.1")}},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return
		}
		_ = csr.CheckSignature()
		ids, err := csrIdentifiers(csr)
		if err != nil {
			if p := AsProblem(err); p == nil || p.Type != ErrBadCSR {
				t.Fatalf("error %v is not a badCSR problem", err)
			}
			return
		}
		if len(ids) > len(csr.DNSNames)+len(csr.IPAddresses) {
			t.Fatalf("%d identifiers from %d SANs", len(ids), len(csr.DNSNames)+len(csr.IPAddresses))
		}
		cut := subjectCNOnly(csr)
		if cut.Subject.CommonName != csr.Subject.CommonName || len(cut.Subject.ToRDNSequence()) > 1 ||
			len(cut.Subject.Organization)+len(cut.Subject.OrganizationalUnit)+len(cut.Subject.Country)+len(cut.Subject.ExtraNames) != 0 {
			t.Fatalf("subject cut to %v from %v", cut.Subject, csr.Subject)
		}
		if cut.Subject.CommonName != "" {
			id := Identifier{Type: IdentifierDNS, Value: strings.ToLower(strings.TrimSuffix(cut.Subject.CommonName, "."))}
			found := false
			for _, x := range ids {
				if x == id || x.Type == IdentifierIP {
					found = true
				}
			}
			if !found {
				t.Fatalf("common name %q kept but not among the identifiers %v", cut.Subject.CommonName, ids)
			}
		}
	})
}
