package errtext

import (
	"errors"
	"testing"
)

func TestUser(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`store: not found: CA "x"`:                                   `not found: CA "x"`,
		`issue: invalid request: store: not found: profile`:          `invalid request: not found: profile`,
		`lifecycle: unknown job "crl": lifecycle: unknown job "crl"`: `unknown job "crl"`,
		`forbidden: bot has no role granting ca:read`:                `forbidden: bot has no role granting ca:read`,
		`the store: is not a prefix here`:                            `the store: is not a prefix here`,
		`read CSR a.pem: pki: parse CSR: asn1: structure error`:      `read CSR a.pem: parse CSR: structure error`,
		`app: restore: backup: bundle ends too early`:                `restore: bundle ends too early`,
		`app: refusing to start: data directory d is open to others`: `refusing to start: data directory d is open to others`,
		`scep: CA "x": store: not found: CA "x"`:                     `not found: CA "x"`,
		`not found: CA "x": not found: CA "x"`:                       `not found: CA "x"`,
		`est: CA "x": store: query failed: CA "x" is locked`:         `CA "x": query failed: CA "x" is locked`,
	} {
		if got := User(errors.New(in)); got != want {
			t.Errorf("User(%q) = %q, want %q", in, got, want)
		}
	}
}
