package profile

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/pki"
)

func TestBuiltinsValidate(t *testing.T) {
	t.Parallel()
	wantDefault := map[string]pki.KeyAlgorithm{
		"web_server":       pki.ECDSAP256,
		"client_auth":      pki.RSA2048,
		"code_signing":     pki.RSA3072,
		"internal_service": pki.ECDSAP256,
		"person":           pki.ECDSAP256,
	}
	all := Builtins()
	if len(all) != len(wantDefault) {
		t.Fatalf("Builtins() has %d profiles, want %d", len(all), len(wantDefault))
	}
	for _, p := range all {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !p.Builtin {
				t.Error("Builtin flag not set")
			}
			if got := p.DefaultKeyAlgorithm(); got != wantDefault[p.Name] {
				t.Errorf("DefaultKeyAlgorithm = %q, want %q", got, wantDefault[p.Name])
			}
			if err := p.AllowsAlgorithm(p.DefaultKeyAlgorithm()); err != nil {
				t.Errorf("AllowsAlgorithm(default): %v", err)
			}
			got, ok := Builtin(p.Name)
			if !ok || !reflect.DeepEqual(got, p) {
				t.Errorf("Builtin(%q) = %+v, %v; want %+v", p.Name, got, ok, p)
			}
		})
	}
}

func TestBuiltinsAreFresh(t *testing.T) {
	t.Parallel()
	a, _ := Builtin("web_server")
	a.Keys[0].MinBits = 1
	a.SubjectFields[0] = "x"
	a.Names.DNS.Allow = false
	b, _ := Builtin("web_server")
	if b.Keys[0].MinBits != 256 || b.SubjectFields[0] != "common_name" || !b.Names.DNS.Allow {
		t.Fatalf("mutating one copy changed another: %+v", b)
	}
	if _, ok := Builtin("nope"); ok {
		t.Fatal(`Builtin("nope") found a profile`)
	}
	c := b.Clone()
	c.Names.DNS.Suffixes = append(c.Names.DNS.Suffixes, "x")
	c.KeyUsage[0] = "y"
	if len(b.Names.DNS.Suffixes) != 0 || b.KeyUsage[0] != "digital_signature" {
		t.Fatal("Clone shares slices with the original")
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range Builtins() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			want := p.Clone()
			want.Builtin = false // Parse ignores it on input

			js, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(js)
			if err != nil {
				t.Fatalf("Parse(JSON): %v\n%s", err, js)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("JSON round trip:\n got %+v\nwant %+v", got, want)
			}

			ym, err := yaml.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err = Parse(ym)
			if err != nil {
				t.Fatalf("Parse(YAML): %v\n%s", err, ym)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("YAML round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

const tenantYAML = `
# A tenant profile, as an operator writes it.
name: " Tenant-A "
description: Services of tenant A
keys:
  - algorithm: ecdsa
    min_bits: 384
  - algorithm: " RSA"
    min_bits: 3072
max_validity_days: 30
renew_before_days: 10
key_usage: [Digital_Signature, key_agreement, key_encipherment]
ext_key_usage: [server_auth, client_auth]
names:
  dns:
    allow: true
    suffixes: [Example.Internal, svc.cluster.local]
  ip:
    allow: true
    ranges: ["10.0.0.0/8", "2001:DB8::/32"]
  email:
    allow: true
    domains: [example.org]
  uri:
    allow: true
    prefixes: ["spiffe://example.org/ns/prod/"]
  require_san: true
subject_fields: [common_name, organization]
`

func TestParseNormalises(t *testing.T) {
	t.Parallel()
	want := &Profile{
		Name:            "tenant-a",
		Description:     "Services of tenant A",
		Keys:            []KeyRule{{"ECDSA", 384}, {"RSA", 3072}},
		MaxValidityDays: 30,
		RenewBeforeDays: 10,
		KeyUsage:        []string{"digital_signature", "key_agreement", "key_encipherment"},
		ExtKeyUsage:     []string{"server_auth", "client_auth"},
		Names: NameRules{
			DNS:        DNSRule{Allow: true, Suffixes: []string{"example.internal", "svc.cluster.local"}},
			IP:         IPRule{Allow: true, Ranges: []string{"10.0.0.0/8", "2001:db8::/32"}},
			Email:      EmailRule{Allow: true, Domains: []string{"example.org"}},
			URI:        URIRule{Allow: true, Prefixes: []string{"spiffe://example.org/ns/prod/"}},
			RequireSAN: true,
			MaxSANs:    DefaultMaxSANs,
		},
		SubjectFields: []string{"common_name", "organization"},
		KeyExport:     KeyExportOnce,
	}
	got, err := Parse([]byte(tenantYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("YAML:\n got %+v\nwant %+v", got, want)
	}
	if got.DefaultKeyAlgorithm() != pki.ECDSAP384 {
		t.Errorf("DefaultKeyAlgorithm = %q, want ecdsa-p384", got.DefaultKeyAlgorithm())
	}

	// The same profile as JSON, with "builtin" (accepted and cleared).
	js, err := json.Marshal(map[string]any{
		"name": "TENANT-A", "description": " Services of tenant A\n", "builtin": true,
		"keys":              []any{map[string]any{"algorithm": "ECDSA", "min_bits": 384}, map[string]any{"algorithm": "rsa", "min_bits": 3072}},
		"max_validity_days": 30, "renew_before_days": 10,
		"key_usage":     want.KeyUsage,
		"ext_key_usage": want.ExtKeyUsage,
		"names": map[string]any{
			"dns":         map[string]any{"allow": true, "suffixes": []string{"example.internal", "svc.cluster.local"}},
			"ip":          map[string]any{"allow": true, "ranges": []string{"10.0.0.0/8", "2001:db8::/32"}},
			"email":       map[string]any{"allow": true, "domains": []string{"EXAMPLE.org"}},
			"uri":         map[string]any{"allow": true, "prefixes": []string{"spiffe://example.org/ns/prod/"}},
			"require_san": true,
		},
		"subject_fields": want.SubjectFields,
		"key_export":     "",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON:\n got %+v\nwant %+v", got, want)
	}
}

// minimalYAML is a valid profile that the invalid cases below break one
// field at a time.
const minimalYAML = `name: p
keys: [{algorithm: RSA, min_bits: 2048}]
max_validity_days: 90
renew_before_days: 10
ext_key_usage: [server_auth]
names: {dns: {allow: true}}
`

const minimalJSON = `{"name":"p","keys":[{"algorithm":"RSA","min_bits":2048}],"max_validity_days":90,` +
	`"renew_before_days":10,"ext_key_usage":["server_auth"],"names":{"dns":{"allow":true}}}`

func TestParseMinimal(t *testing.T) {
	t.Parallel()
	for _, in := range []string{minimalYAML, minimalJSON, "  \n\t" + minimalJSON + "\n"} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

func TestParseRejectsField(t *testing.T) {
	t.Parallel()
	yamlWith := func(old, repl string) string {
		if !strings.Contains(minimalYAML, old) {
			panic("test case does not apply: " + old)
		}
		return strings.Replace(minimalYAML, old, repl, 1)
	}
	jsonWith := func(old, repl string) string {
		if !strings.Contains(minimalJSON, old) {
			panic("test case does not apply: " + old)
		}
		return strings.Replace(minimalJSON, old, repl, 1)
	}
	tests := []struct {
		name  string
		in    string
		field string
	}{
		{"yaml unknown field", minimalYAML + "max_validty_days: 3\n", "max_validty_days"},
		{"yaml unknown nested field", yamlWith("{allow: true}", "{allow: true, allow_wildcards: true}"), "names.dns.allow_wildcards"},
		{"yaml builtin is not a YAML field", minimalYAML + "builtin: true\n", "builtin"},
		{"yaml duplicate field", minimalYAML + "name: q\n", "name"},
		{"yaml wrong type", minimalYAML + "require_approval: \"yes\"\n", "require_approval"},
		{"yaml number for string", yamlWith("name: p", "name: 123"), "name"},
		{"yaml alias", yamlWith("ext_key_usage: [server_auth]", "ext_key_usage: &e [server_auth]\nkey_usage: *e"), "ext_key_usage"},
		{"yaml tag", yamlWith("name: p", "name: !!binary cA=="), "name"},
		{"yaml not a mapping", "- a\n- b\n", ""},
		{"json unknown field", jsonWith(`"name":"p"`, `"name":"p","extra":1`), "extra"},
		{"json unknown nested field", jsonWith(`"min_bits":2048`, `"min_bits":2048,"bits":1`), "keys[0].bits"},
		{"json field name case", jsonWith(`"name":"p"`, `"Name":"p"`), "Name"},
		{"json duplicate field", jsonWith(`"name":"p"`, `"name":"p","name":"q"`), "name"},
		{"json wrong type", jsonWith(`"max_validity_days":90`, `"max_validity_days":"90"`), "max_validity_days"},
		{"json fraction", jsonWith(`"max_validity_days":90`, `"max_validity_days":90.5`), "max_validity_days"},
		{"json huge number", jsonWith(`"max_validity_days":90`, `"max_validity_days":1e400`), "max_validity_days"},
		{"name syntax", yamlWith("name: p", "name: -bad"), "name"},
		{"name too long", yamlWith("name: p", "name: "+strings.Repeat("a", 64)), "name"},
		{"no keys", yamlWith("keys: [{algorithm: RSA, min_bits: 2048}]", "keys: []"), "keys"},
		{"unknown family", yamlWith("algorithm: RSA", "algorithm: DSA"), "keys[0].algorithm"},
		{"duplicate family", yamlWith("min_bits: 2048}]", "min_bits: 2048}, {algorithm: rsa, min_bits: 4096}]"), "keys[1].algorithm"},
		{"rsa min 1024", yamlWith("{algorithm: RSA, min_bits: 2048}", "{algorithm: ECDSA, min_bits: 256}, {algorithm: RSA, min_bits: 1024}"), "keys[1].min_bits"},
		{"rsa above generatable", yamlWith("min_bits: 2048", "min_bits: 8192"), "keys[0].min_bits"},
		{"ecdsa p224", yamlWith("{algorithm: RSA, min_bits: 2048}", "{algorithm: ECDSA, min_bits: 224}"), "keys[0].min_bits"},
		{"ed25519 size", yamlWith("{algorithm: RSA, min_bits: 2048}", "{algorithm: Ed25519, min_bits: 128}"), "keys[0].min_bits"},
		{"validity zero", yamlWith("max_validity_days: 90", "max_validity_days: 0"), "max_validity_days"},
		{"validity too long", yamlWith("max_validity_days: 90", "max_validity_days: 3651"), "max_validity_days"},
		{"renew equals validity", yamlWith("renew_before_days: 10", "renew_before_days: 90"), "renew_before_days"},
		{"renew negative", yamlWith("renew_before_days: 10", "renew_before_days: -1"), "renew_before_days"},
		{"unknown key usage", minimalYAML + "key_usage: [digital_signature, cert_sign]\n", "key_usage[1]"},
		{"duplicate key usage", minimalYAML + "key_usage: [digital_signature, Digital_Signature]\n", "key_usage[1]"},
		{"key agreement without ECDSA", minimalYAML + "key_usage: [key_agreement]\n", "key_usage[0]"},
		{"no EKU", yamlWith("ext_key_usage: [server_auth]", "ext_key_usage: []"), "ext_key_usage"},
		{"unknown EKU", yamlWith("ext_key_usage: [server_auth]", "ext_key_usage: [server_auht]"), "ext_key_usage[0]"},
		{"empty EKU entry", yamlWith("ext_key_usage: [server_auth]", "ext_key_usage: [server_auth, ' ']"), "ext_key_usage[1]"},
		{"bad suffix", yamlWith("{allow: true}", "{allow: true, suffixes: [under_score.example]}"), "names.dns.suffixes[0]"},
		{"wildcard suffix", yamlWith("{allow: true}", "{allow: true, suffixes: ['*.example.com']}"), "names.dns.suffixes[0]"},
		{"suffix while dns disallowed", yamlWith("{allow: true}", "{allow: false, suffixes: [example.com]}"), "names.dns.suffixes"},
		{"wildcard while dns disallowed", yamlWith("{allow: true}", "{allow: false, allow_wildcard: true}"), "names.dns.allow_wildcard"},
		{"bad CIDR", yamlWith("{dns: {allow: true}}", "{ip: {allow: true, ranges: [10.0.0.0/33]}}"), "names.ip.ranges[0]"},
		{"CIDR host bits", yamlWith("{dns: {allow: true}}", "{ip: {allow: true, ranges: [10.0.0.1/8]}}"), "names.ip.ranges[0]"},
		{"CIDR 4in6", yamlWith("{dns: {allow: true}}", "{ip: {allow: true, ranges: ['::ffff:10.0.0.0/104']}}"), "names.ip.ranges[0]"},
		{"duplicate CIDR", yamlWith("{dns: {allow: true}}", "{ip: {allow: true, ranges: ['2001:db8::/32', '2001:DB8::/32']}}"), "names.ip.ranges[1]"},
		{"bad email domain", yamlWith("{dns: {allow: true}}", "{email: {allow: true, domains: ['@example.org']}}"), "names.email.domains[0]"},
		{"URI prefix without scheme", yamlWith("{dns: {allow: true}}", "{uri: {allow: true, prefixes: [example.org/x]}}"), "names.uri.prefixes[0]"},
		{"URI prefix with query", yamlWith("{dns: {allow: true}}", "{uri: {allow: true, prefixes: ['https://example.org/?a=b']}}"), "names.uri.prefixes[0]"},
		{"require SAN with none allowed", yamlWith("{dns: {allow: true}}", "{require_san: true}"), "names.require_san"},
		{"max sans negative", yamlWith("{dns: {allow: true}}", "{dns: {allow: true}, max_sans: -1}"), "names.max_sans"},
		{"unknown subject field", minimalYAML + "subject_fields: [common_name, email_address]\n", "subject_fields[1]"},
		{"key export", minimalYAML + "key_export: forever\n", "key_export"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse error = %v (%T), want *FieldError for %q", err, err, tt.field)
			}
			if fe.Field != tt.field {
				t.Fatalf("Field = %q (%v), want %q", fe.Field, err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "profile: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	t.Parallel()
	p, _ := Builtin("web_server")
	p.Keys[1].MinBits = 1024
	err := p.Validate()
	const want = "profile: keys[1].min_bits: RSA minimum 1024 is below 2048"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %q", err, want)
	}
}

func TestParseRejectsDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		is   error
	}{
		{"too large", minimalYAML + "description: " + strings.Repeat("x", MaxInput) + "\n", ErrTooLarge},
		{"empty", "", ErrMalformed},
		{"only comments", "# nothing\n", ErrMalformed},
		{"two YAML documents", minimalYAML + "---\n" + minimalYAML, ErrMalformed},
		{"trailing JSON", minimalJSON + "{}", ErrMalformed},
		{"truncated JSON", minimalJSON[:40], ErrMalformed},
		{"JSON syntax", `{"name" "p"}`, ErrMalformed},
		{"YAML syntax", "name: [p\n", ErrMalformed},
		{"YAML flow list then block item", minimalYAML + "ext_key_usage: [server_auth]\n  - client_auth\n", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse accepted %+v", p)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v is not %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "profile: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}
