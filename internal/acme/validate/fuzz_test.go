package validate

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const fuzzKeyAuth = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"

// FuzzHTTP01Body feeds what an http-01 target answers: the body matches
// exactly when, trimmed of surrounding whitespace, it is the key
// authorization.
func FuzzHTTP01Body(f *testing.F) {
	for _, s := range []string{fuzzKeyAuth, fuzzKeyAuth + "\n", " \t" + fuzzKeyAuth + "\r\n", fuzzKeyAuth + "x", "", "\x00", strings.ToUpper(fuzzKeyAuth)} {
		f.Add([]byte(s), fuzzKeyAuth)
	}
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, body []byte, keyAuth string) {
		got := KeyAuthorizationMatches(body, keyAuth)
		want := keyAuth != "" && string(bytes.TrimSpace(body)) == keyAuth
		if got != want {
			t.Fatalf("KeyAuthorizationMatches(%q, %q) = %v, want %v", body, keyAuth, got, want)
		}
	})
}

// TestKeyAuthorizationMatches: fixed answers for what FuzzHTTP01Body
// compares against a plain equality.
func TestKeyAuthorizationMatches(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body, keyAuth string
		want          bool
	}{
		{fuzzKeyAuth, fuzzKeyAuth, true},
		{" \t" + fuzzKeyAuth + "\r\n", fuzzKeyAuth, true},
		{fuzzKeyAuth + "x", fuzzKeyAuth, false},
		{strings.ToUpper(fuzzKeyAuth), fuzzKeyAuth, false},
		{fuzzKeyAuth[:len(fuzzKeyAuth)-1], fuzzKeyAuth, false},
		{"", "", false},
		{"  ", "", false},
	} {
		if got := KeyAuthorizationMatches([]byte(c.body), c.keyAuth); got != c.want {
			t.Errorf("KeyAuthorizationMatches(%q, %q) = %v, want %v", c.body, c.keyAuth, got, c.want)
		}
	}
}

// FuzzRedirect feeds the Location an http-01 target answers with. An
// accepted redirect is http(s) on the validation ports, and names an IP
// address only when it is the identifier itself.
func FuzzRedirect(f *testing.F) {
	for _, s := range []string{
		"http://other.test/x", "/relative", "https://secure.test/x", "http://127.0.0.1/self", "http://127.0.0.5/",
		"http://[::ffff:169.254.169.254]/", "http://169.254.169.254:80/", "http://0x7f.1/", "http://2130706433/",
		"http://[fe80::1%25eth0]/", "ftp://x/", "http://example.test:8080/", "//evil.test/", "http://user@127.0.0.5/",
		"http://127.0.0.1./", "http://[::1]/", "http://%31%32%37.0.0.5/",
	} {
		f.Add(s, "127.0.0.1")
		f.Add(s, "example.test")
	}
	v, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	from, _ := url.Parse("http://example.test/.well-known/acme-challenge/tok")
	f.Fuzz(func(t *testing.T, loc, ident string) {
		typ := "dns"
		if _, err := netip.ParseAddr(ident); err == nil {
			typ = "ip"
		}
		id, err := parseIdentifier(typ, ident)
		if err != nil {
			return
		}
		to, err := from.Parse(loc)
		if err != nil {
			return
		}
		if v.checkRedirect(id, from, to) != nil {
			return
		}
		if to.Scheme != "http" && to.Scheme != "https" {
			t.Fatalf("accepted scheme %q", to.Scheme)
		}
		if p := to.Port(); p != "" && p != "80" && p != "443" {
			t.Fatalf("accepted port %q", p)
		}
		host := to.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			if id.typ != "ip" || a != id.ip {
				t.Fatalf("accepted a redirect to the IP address %s validating %s", a, ident)
			}
		} else if !validDNSName(strings.ToLower(host)) {
			t.Fatalf("accepted host %q", host)
		}
	})
}

// FuzzChallengeCert feeds the certificate a tls-alpn-01 target presents.
// It is accepted only with exactly the identifier as its one SAN and a
// critical acmeIdentifier holding SHA-256 of the key authorization.
func FuzzChallengeCert(f *testing.F) {
	for _, id := range [][2]string{{"dns", "example.test"}, {"ip", "127.0.0.1"}, {"ip", "::1"}} {
		c, err := ChallengeCert(id[0], id[1], fuzzKeyAuth)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Certificate[0], id[0], id[1])
		wrong, err := ChallengeCert(id[0], id[1], "other")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wrong.Certificate[0], id[0], id[1])
	}
	want := sha256.Sum256([]byte(fuzzKeyAuth))
	f.Fuzz(func(t *testing.T, der []byte, identType, value string) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := parseIdentifier(identType, value)
		if err != nil {
			return
		}
		if checkChallengeCert(cert, id, fuzzKeyAuth) != "" {
			return
		}
		var acmeID []byte
		for _, ext := range cert.Extensions {
			if ext.Id.Equal(oidACMEIdentifier) {
				if !ext.Critical {
					t.Fatal("accepted a non-critical acmeIdentifier")
				}
				if _, err := asn1.Unmarshal(ext.Value, &acmeID); err != nil {
					t.Fatalf("accepted an undecodable acmeIdentifier: %v", err)
				}
			}
		}
		if !bytes.Equal(acmeID, want[:]) {
			t.Fatalf("accepted acmeIdentifier %x", acmeID)
		}
		switch id.typ {
		case "dns":
			if len(cert.DNSNames) != 1 || !strings.EqualFold(cert.DNSNames[0], id.value) || len(cert.IPAddresses) != 0 {
				t.Fatalf("accepted SANs %v %v for %s", cert.DNSNames, cert.IPAddresses, id.value)
			}
		case "ip":
			if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(id.ip.AsSlice()) || len(cert.DNSNames) != 0 {
				t.Fatalf("accepted SANs %v %v for %s", cert.DNSNames, cert.IPAddresses, id.value)
			}
		}
	})
}

// FuzzDNS01Answer feeds the DNS answer to a dns-01 TXT query: the
// challenge passes only when some TXT record, its strings joined, is the
// expected value.
func FuzzDNS01Answer(f *testing.F) {
	want := DNS01Value(fuzzKeyAuth)
	for _, txts := range [][]string{{want}, {"wrong"}, {want[:20], want[20:]}, {}, {"a", "b", want}} {
		m := new(dns.Msg)
		m.SetQuestion("_acme-challenge.example.test.", dns.TypeTXT)
		hdr := dns.RR_Header{Name: "_acme-challenge.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: txts})
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		found, n, others := matchTXT(m, want)
		expect := false
		count := 0
		for _, rr := range m.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				count++
				if strings.Join(txt.Txt, "") == want {
					expect = true
				}
			}
		}
		if found != expect {
			t.Fatalf("matchTXT found %v, want %v", found, expect)
		}
		if !found && (n != count || len(others) > 10) {
			t.Fatalf("matchTXT counted %d (%d shown) of %d", n, len(others), count)
		}
		for _, o := range others {
			if len(o) > clipLen+3 {
				t.Fatalf("unclipped value of %d bytes", len(o))
			}
		}
	})
}
