package profile

import (
	"crypto/elliptic"
	"net"
	"net/url"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse checks that Parse never panics, that whatever it accepts
// re-marshals (JSON and YAML) to a definition that parses back equal, and
// that Check and Usages run on it without panicking.
func FuzzParse(f *testing.F) {
	for _, p := range Builtins() {
		js, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(tenantYAML))
	f.Add([]byte(minimalYAML))
	f.Add([]byte(minimalJSON))
	f.Add([]byte(minimalYAML + "key_usage: [digital_signature, Key_Encipherment]\nkey_export: retain\n"))
	f.Add([]byte(minimalYAML + "x: &a [1]\ny: *a\n"))
	f.Add([]byte(`{"name":"p","names":{"uri":{"allow":true,"prefixes":["urn:uuid:"]}}}`))
	f.Add([]byte("name: p\n---\nname: q\n"))

	req := Request{
		PublicKey:      ecPub(f, elliptic.P256()),
		DNSNames:       []string{"www.example.internal", "*.example.internal"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")},
		EmailAddresses: []string{"ops@example.org"},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/ns/prod/x"}, {Scheme: "urn", Opaque: "uuid:1"}},
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a profile with error %v", err)
			}
			return
		}
		js, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		p2, err := Parse(js)
		if err != nil {
			t.Fatalf("re-parse JSON %s: %v", js, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("JSON round trip changed the profile:\n%+v\n%+v", p, p2)
		}
		ym, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		p3, err := Parse(ym)
		if err != nil {
			t.Fatalf("re-parse YAML %s: %v", ym, err)
		}
		if !reflect.DeepEqual(p, p3) {
			t.Fatalf("YAML round trip changed the profile:\n%+v\n%+v", p, p3)
		}
		_ = p.Check(req)
		p.Usages(req.PublicKey)
		if a := p.DefaultKeyAlgorithm(); p.AllowsAlgorithm(a) != nil {
			t.Fatalf("default key algorithm %q is not allowed by its own profile", a)
		}
	})
}
