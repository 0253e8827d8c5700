package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultTLSNames(t *testing.T) {
	t.Parallel()
	loop := []string{"localhost", "127.0.0.1", "::1"}
	for _, c := range []struct {
		url  string
		want []string
	}{
		{"http://127.0.0.1:8080", loop},
		{"http://localhost:8080", loop},
		{"http://PKI.Example.Internal:8080", append([]string{"pki.example.internal"}, loop...)},
		{"http://10.0.0.5", append([]string{"10.0.0.5"}, loop...)},
	} {
		if got := defaultTLSNames(c.url); !slices.Equal(got, c.want) {
			t.Errorf("defaultTLSNames(%q) = %v, want %v", c.url, got, c.want)
		}
	}
}

func TestIdentityValidation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		err   error
		field string
	}{
		{"names ok", ValidateTLSNames([]string{"pki.example.internal", "localhost", "10.0.0.5", "::1"}), ""},
		{"no names", ValidateTLSNames(nil), "tls_names"},
		{"space", ValidateTLSNames([]string{"pki example"}), "tls_names"},
		{"wildcard", ValidateTLSNames([]string{"*.example.internal"}), "tls_names"},
		{"URL as name", ValidateTLSNames([]string{"https://pki.example.internal"}), "tls_names"},
		{"org ok", ValidateOrganization("Example Corp, Ltd."), ""},
		{"org empty", ValidateOrganization("  "), "init.organization"},
		{"org long", ValidateOrganization(strings.Repeat("é", MaxOrganization+1)), "init.organization"},
		{"org control", ValidateOrganization("Example\x1b[31m"), "init.organization"},
		{"url ok", ValidatePublicHTTPURL("http://pki.example.internal:8080"), ""},
		{"url https", ValidatePublicHTTPURL("https://pki.example.internal"), "public_http_url"},
		{"url path", ValidatePublicHTTPURL("http://pki.example.internal/pki"), "public_http_url"},
	} {
		if c.field == "" {
			if c.err != nil {
				t.Errorf("%s: %v", c.name, c.err)
			}
			continue
		}
		if !errors.Is(c.err, ErrInvalid) || !strings.Contains(c.err.Error(), c.field+":") {
			t.Errorf("%s: err = %v, want ErrInvalid naming %s", c.name, c.err, c.field)
		}
	}
}

// TestReplicaName: replica_name is 1 to 64 printable characters; unset,
// the replica is HOSTNAME:PORT with https_listen's port, and a saved
// configuration does not carry it (a copied config.yaml must not name
// the other replica).
func TestReplicaName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"eu-1", true},
		{"pki-0.pki.svc:8443", true},
		{"réplica b", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"tab\there", false},
		{"new\nline", false},
		{"\x7f", false},
	} {
		cfg := &Config{DataDir: t.TempDir(), ReplicaName: c.name}
		cfg.Defaults()
		err := cfg.Validate()
		var fe *FieldError
		if c.ok != (err == nil) || (err != nil && (!errors.As(err, &fe) || fe.Field != "replica_name")) {
			t.Errorf("replica_name %q: %v", c.name, err)
		}
	}
	cfg := &Config{DataDir: t.TempDir(), HTTPSListen: "0.0.0.0:9443"}
	cfg.Defaults()
	host, _ := os.Hostname()
	if got := cfg.Replica(); got != host+":9443" && !strings.HasSuffix(host+":9443", got) {
		t.Errorf("default replica name %q, want %q", got, host+":9443")
	}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "replica_name") {
		t.Errorf("the saved configuration names the replica:\n%s", b)
	}
}
