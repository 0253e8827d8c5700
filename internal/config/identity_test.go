package config

import (
	"errors"
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
