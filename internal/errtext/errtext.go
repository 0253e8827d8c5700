// Package errtext turns an error's message into the words a user reads:
// without the package prefixes of the wrapping chain. Errors keep their
// prefixes and %w chains for logs and errors.Is/As; only what is shown to
// a person (an API error's detail, the client's error line) goes through
// User.
package errtext

import (
	"slices"
	"strings"
)

// isPackage reports whether s is a prefix that one of our packages, or a
// standard-library parser, puts on its errors ("store: not found: CA
// \"x\""): useful in a log, noise to a user.
func isPackage(s string) bool {
	switch s {
	case "access", "acme", "agent", "api", "app", "audit", "authz", "backup", "ca", "clientctx", "compliance", "config", "crl", "enroll",
		"est", "inventory", "issue", "keys", "lifecycle", "lint", "notify", "ocsp", "pkcs11", "pki", "profile",
		"revcheck", "revoke", "scan", "tlsprobe", "grade", "service", "discovery", "ceremony", "escrow", "scep", "software", "sqlite", "postgres", "store", "validate", "yamlconf", "inspect",
		"asn1", "x509":
		return true
	}
	return false
}

// User is err's message without the package prefixes of the wrapping
// chain and without a part said again later: "store: not found: store:
// not found: CA \"x\"" reads "not found: CA \"x\"", and so does
// "scep: CA \"x\": store: not found: CA \"x\"" (a caller naming what
// it looked up, wrapping an error that names it too). Of a repeated part
// the last is kept, where the error that caused the rest says it.
func User(err error) string {
	parts := strings.Split(err.Error(), ": ")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		// A prefix is followed by more; a last part is a value.
		if (isPackage(p) && i < len(parts)-1) || slices.Contains(parts[i+1:], p) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}
