package acme

import (
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

// FuzzNormalizeIdentifier feeds newOrder identifiers, which come straight
// from clients. Normalisation must not panic, must be idempotent, and must
// only ever produce lower-case ASCII DNS names or canonical IP addresses.
func FuzzNormalizeIdentifier(f *testing.F) {
	for _, s := range [][2]string{
		{"dns", "www.example.test"}, {"dns", "WWW.Example.TEST."}, {"dns", "*.example.test"}, {"dns", "*."},
		{"dns", "192.0.2.1"}, {"dns", "a..b"}, {"dns", "-a.test"}, {"dns", "bücher.test"}, {"dns", "\u212Aelvin.test"},
		{"dns", strings.Repeat("a.", 130)}, {"ip", "2001:DB8::1"}, {"ip", "::ffff:192.0.2.1"}, {"ip", "fe80::1%eth0"},
		{"ip", "1.2.3"}, {"email", "a@example.test"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		id, p := normalizeIdentifier(Identifier{Type: typ, Value: value})
		if p != nil {
			if p.Identifier == nil || p.Identifier.Value != value || p.Type == "" {
				t.Fatalf("problem %+v does not name the identifier", p)
			}
			if _, ok := errorStatus[p.Type]; !ok {
				t.Fatalf("problem type %q has no status", p.Type)
			}
			return
		}
		if id.Type != typ {
			t.Fatalf("type %q became %q", typ, id.Type)
		}
		again, p := normalizeIdentifier(id)
		if p != nil || again != id {
			t.Fatalf("%q normalises to %q, which normalises to %q (%v)", value, id.Value, again.Value, p)
		}
		switch id.Type {
		case IdentifierDNS:
			base := strings.TrimPrefix(id.Value, "*.")
			if dnsNameProblem(base) != "" || strings.ToLower(id.Value) != id.Value {
				t.Fatalf("%q normalised to an invalid DNS name %q", value, id.Value)
			}
			if _, err := netip.ParseAddr(id.Value); err == nil {
				t.Fatalf("%q normalised to the IP-looking DNS name %q", value, id.Value)
			}
		case IdentifierIP:
			a, err := netip.ParseAddr(id.Value)
			if err != nil || a.String() != id.Value || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("%q normalised to the non-canonical address %q", value, id.Value)
			}
		default:
			t.Fatalf("type %q accepted", id.Type)
		}
	})
}

// FuzzParseCertID feeds parseCertID the RFC 9773 IDs clients send in
// renewalInfo URLs and newOrder's replaces.
func FuzzParseCertID(f *testing.F) {
	for _, s := range []string{
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.", ".AIdlQyE", "a.b.c", "", ".",
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA", "AA.AA", "A.A", "!!.??", strings.Repeat("A", 300) + ".AQ",
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl\nQyE", "aYhba4dG\r\nQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "AA.AQ\n", " AA.AQ", "AA.AQ==",
		"AA%2EAQ", "AA.AQ\x00", "AA.A+Q", "AA.A/Q",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		aki, serial, err := parseCertID(id)
		if err != nil {
			p := AsProblem(err)
			if p == nil {
				t.Fatalf("error %v is not a problem", err)
			}
			if len(p.Detail) > 400 { // 64 bytes quoted, at most 4 characters each
				t.Fatalf("problem detail is %d bytes", len(p.Detail))
			}
			return
		}
		// Accepted IDs are base64url with exactly one '.', nothing else:
		// no line breaks, padding, spaces or standard-base64 characters.
		if strings.Count(id, ".") != 1 {
			t.Fatalf("accepted %q with %d dots", id, strings.Count(id, "."))
		}
		for _, c := range []byte(id) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				t.Fatalf("accepted %q containing %q", id, c)
			}
		}
		n, ok := new(big.Int).SetString(serial, 16)
		if serial != "" && (!ok || n.Sign() < 0) {
			t.Fatalf("serial %q is not hex", serial)
		}
		if serial == "" {
			n = new(big.Int)
		}
		// Built again from its parts, the ID names the same certificate.
		aki2, serial2, err := parseCertID(certID(aki, n))
		if err != nil || string(aki2) != string(aki) || serial2 != serial {
			t.Fatalf("%q parsed to %x/%s; rebuilt it parses to %x/%s (%v)", id, aki, serial, aki2, serial2, err)
		}
	})
}
