// Package errtext turns an error's message into the words a user reads:
// without the package prefixes of the wrapping chain. Errors keep their
// prefixes and %w chains for logs and errors.Is/As; only what is shown to
// a person (an API error's detail, the client's error line) goes through
// User.
package errtext

import "strings"

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
// chain and without a part said twice in a row: "store: not found: store:
// not found: CA \"x\"" reads "not found: CA \"x\"".
func User(err error) string {
	parts := strings.Split(err.Error(), ": ")
	out := parts[:0]
	for i, p := range parts {
		// A prefix is followed by more; a last part is a value.
		if (isPackage(p) && i < len(parts)-1) || (len(out) > 0 && out[len(out)-1] == p) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}
