package clientctx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/pki"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of DER bytes.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String formats the fingerprint as "certwright serve" prints it:
// uppercase hex pairs joined by colons.
func (f Fingerprint) String() string { return pki.ColonHex(f[:]) }

// ParseFingerprint reads a SHA-256 fingerprint as a user pastes it: with or
// without colons, in either case, with an optional "SHA256:" or "sha-256:"
// prefix, or as openssl prints it ("sha256 Fingerprint=AB:CD:..."). It must
// name all 32 bytes; nothing shorter matches.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	in := strings.TrimSpace(s)
	if k, v, ok := strings.Cut(in, "="); ok && strings.EqualFold(strings.Join(strings.Fields(k), " "), "sha256 fingerprint") {
		in = v
	}
	if i := strings.IndexByte(in, ':'); i > 0 {
		switch strings.ToLower(in[:i]) {
		case "sha256", "sha-256":
			in = in[i+1:]
		}
	}
	in = strings.ReplaceAll(strings.TrimSpace(in), ":", "")
	if len(in) != 2*sha256.Size {
		return f, fmt.Errorf("clientctx: fingerprint %q is not a SHA-256 fingerprint: want 64 hex digits (colons allowed), as printed after \"root CA SHA-256 fingerprint:\"", s)
	}
	if _, err := hex.Decode(f[:], []byte(in)); err != nil {
		return f, fmt.Errorf("clientctx: fingerprint %q is not a SHA-256 fingerprint: %v", s, err)
	}
	return f, nil
}
