package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/config"
)

const oidcBase = "auth:\n  oidc:\n    - name: corp\n      issuer: https://login.example.com\n      client_id: certwright\n"

func TestAuthOIDCValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		field string // "" means valid
	}{
		{"minimal", oidcBase, ""},
		{"loopback http issuer", strings.Replace(oidcBase, "https://login.example.com", "http://127.0.0.1:5556", 1), ""},
		{"ipv6 loopback http issuer", strings.Replace(oidcBase, "https://login.example.com", "'http://[::1]:5556'", 1), ""},
		{"issuer with path", strings.Replace(oidcBase, "https://login.example.com", "https://login.example.com/realms/pki", 1), ""},
		{"everything", oidcBase + "      client_secret_file: oidc-secret\n      cli_client_id: certwright-cli\n" +
			"      scopes: [openid, email, groups]\n      ca_bundle: /etc/ssl/idp.pem\n      subject_claim: oid\n" +
			"      groups_claim: https://example.com/groups\n      create_principals: true\n      token_lifetime: 12h\n" +
			"      roles:\n        - group: pki-admins\n          role: admin\n        - group: web-team\n          role: issuer\n" +
			"          scope:\n            cas: [issuing]\n            names: ['*.web.example.com']\n", ""},
		{"two providers", oidcBase + "    - name: other\n      issuer: https://idp.example.org\n      client_id: x\n", ""},

		{"no name", strings.Replace(oidcBase, "name: corp", "name: ''", 1), "auth.oidc[0].name"},
		{"upper-case name", strings.Replace(oidcBase, "name: corp", "name: Corp", 1), "auth.oidc[0].name"},
		{"long name", strings.Replace(oidcBase, "name: corp", "name: "+strings.Repeat("a", 33), 1), "auth.oidc[0].name"},
		{"duplicate name", oidcBase + "    - name: corp\n      issuer: https://idp.example.org\n      client_id: x\n", "auth.oidc[1].name"},
		{"no issuer", strings.Replace(oidcBase, "issuer: https://login.example.com", "issuer: ''", 1), "auth.oidc[0].issuer"},
		{"http issuer", strings.Replace(oidcBase, "https://login.example.com", "http://login.example.com", 1), "auth.oidc[0].issuer"},
		{"http private address", strings.Replace(oidcBase, "https://login.example.com", "http://10.0.0.1", 1), "auth.oidc[0].issuer"},
		{"issuer query", strings.Replace(oidcBase, "https://login.example.com", "https://login.example.com/?tenant=a", 1), "auth.oidc[0].issuer"},
		{"issuer fragment", strings.Replace(oidcBase, "https://login.example.com", "https://login.example.com#x", 1), "auth.oidc[0].issuer"},
		{"issuer credentials", strings.Replace(oidcBase, "https://login.example.com", "https://u:p@login.example.com", 1), "auth.oidc[0].issuer"},
		{"issuer relative", strings.Replace(oidcBase, "https://login.example.com", "login.example.com", 1), "auth.oidc[0].issuer"},
		{"no client id", strings.Replace(oidcBase, "client_id: certwright", "client_id: ''", 1), "auth.oidc[0].client_id"},
		{"client id with space", strings.Replace(oidcBase, "client_id: certwright", "client_id: 'cert wright'", 1), "auth.oidc[0].client_id"},
		{"cli client id with space", oidcBase + "      cli_client_id: 'a b'\n", "auth.oidc[0].cli_client_id"},
		// One client for the console and the CLI would let a token (or
		// a code) issued to one serve the other.
		{"cli client id is the console's", oidcBase + "      cli_client_id: certwright\n", "auth.oidc[0].cli_client_id"},
		{"cli binding required", oidcBase + "      cli_client_id: certwright-cli\n      cli_require_binding: true\n", ""},
		{"cli binding required without a cli client", oidcBase + "      cli_require_binding: true\n", "auth.oidc[0].cli_require_binding"},
		{"email domains", oidcBase + "      email_domains: [example.com, corp.example.com]\n", ""},
		{"one client twice", oidcBase + "    - name: corp2\n      issuer: https://login.example.com\n      client_id: certwright\n", "auth.oidc[1].client_id"},
		{"two clients of one issuer", oidcBase + "    - name: corp2\n      issuer: https://login.example.com\n      client_id: other\n", ""},
		{"email domain with @", oidcBase + "      email_domains: ['@example.com']\n", "auth.oidc[0].email_domains[0]"},
		{"email domain upper case", oidcBase + "      email_domains: [Example.com]\n", "auth.oidc[0].email_domains[0]"},
		{"scopes without openid", oidcBase + "      scopes: [email, profile]\n", "auth.oidc[0].scopes"},
		{"scope with quote", oidcBase + "      scopes: [openid, 'a\"b']\n", "auth.oidc[0].scopes"},
		{"bad subject claim", oidcBase + "      subject_claim: 'a b'\n", "auth.oidc[0].subject_claim"},
		{"bad groups claim", oidcBase + "      groups_claim: 'a b'\n", "auth.oidc[0].groups_claim"},
		{"token lifetime too short", oidcBase + "      token_lifetime: 1m\n", "auth.oidc[0].token_lifetime"},
		{"token lifetime too long", oidcBase + "      token_lifetime: 8d\n", "auth.oidc[0].token_lifetime"},
		{"token lifetime garbage", oidcBase + "      token_lifetime: soon\n", "auth.oidc[0].token_lifetime"},
		{"secret file spaces", oidcBase + "      client_secret_file: ' x'\n", "auth.oidc[0].client_secret_file"},
		{"unknown role", oidcBase + "      roles:\n        - group: g\n          role: superuser\n", "auth.oidc[0].roles[0].role"},
		{"empty group", oidcBase + "      roles:\n        - group: ''\n          role: viewer\n", "auth.oidc[0].roles[0].group"},
		{"bad scope pattern", oidcBase + "      roles:\n        - group: g\n          role: viewer\n          scope:\n            names: ['a*b']\n", "auth.oidc[0].roles[0].scope"},
		{"empty scope CA", oidcBase + "      roles:\n        - group: g\n          role: viewer\n          scope:\n            cas: ['']\n", "auth.oidc[0].roles[0].scope"},
		{"server URLs", "auth:\n  server_urls: ['https://pki.example.com', 'https://pki.example.com:9443/']\n", ""},
		{"server URL over http", "auth:\n  server_urls: ['http://pki.example.com']\n", "auth.server_urls[0]"},
		{"server URL with a path", "auth:\n  server_urls: ['https://pki.example.com/api']\n", "auth.server_urls[0]"},
		{"server URL bad port", "auth:\n  server_urls: ['https://pki.example.com', 'https://pki.example.com:70000']\n", "auth.server_urls[1]"},
		{"server URL no host", "auth:\n  server_urls: ['https://:443']\n", "auth.server_urls[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaulted(t, tt.yaml)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate error = %v, want ErrInvalid naming %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error %q does not name field %q", err, tt.field)
			}
		})
	}
}

func TestAuthOIDCDefaults(t *testing.T) {
	t.Parallel()
	c := defaulted(t, oidcBase)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := c.Auth.OIDC[0]
	if p.CLIClientID != "" || p.SubjectClaim != "sub" || p.GroupsClaim != "groups" ||
		!slices.Equal(p.Scopes, []string{"openid", "email", "profile"}) || p.Lifetime() != 8*time.Hour || p.CreatePrincipals {
		t.Errorf("defaults = %+v", p)
	}
}

func TestAuthOIDCErrorNamesLine(t *testing.T) {
	t.Parallel()
	c := defaulted(t, strings.Replace(oidcBase, "https://login.example.com", "http://login.example.com", 1))
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "test.yaml:4:") || !strings.Contains(err.Error(), "http only on loopback") {
		t.Errorf("error %v: want it to name test.yaml line 4 and say http is for loopback only", err)
	}
}

func TestAuthOIDCUnknownKey(t *testing.T) {
	t.Parallel()
	var c config.Config
	err := c.Decode([]byte(oidcBase+"      client_secret: hunter2\n"), "test.yaml")
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "client_secret") {
		t.Errorf("Decode = %v, want an unknown-key error (secrets belong in client_secret_file)", err)
	}
}
