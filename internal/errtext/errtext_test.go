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
		`import: certificate 1: invalid: certificate 2: invalid`:     `import: certificate 1: invalid: certificate 2: invalid`,
	} {
		if got := User(errors.New(in)); got != want {
			t.Errorf("User(%q) = %q, want %q", in, got, want)
		}
	}
}
