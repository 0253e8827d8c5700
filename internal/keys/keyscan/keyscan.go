// Package keyscan finds unencrypted private keys hidden in bytes: PEM
// blocks, DER PKCS#8, SEC 1 or PKCS#1 keys at any offset, the same inside
// hex or base64 runs, and known raw secrets. Tests use it to prove that no
// file or database row holds a key in the clear.
package keyscan

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
)

// Find reports the first private key found in b, or "". secrets maps a name
// to raw secret bytes (key scalars a test knows); runs of 16 bytes or more
// are looked for verbatim.
func Find(b []byte, secrets map[string][]byte) string {
	if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
		return "PEM private key block"
	}
	for name, s := range secrets {
		if len(s) >= 16 && bytes.Contains(b, s) {
			return "raw secret of " + name
		}
	}
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0x30 {
			continue
		}
		n, hdr := derLen(b[i+1:])
		if n <= 0 || n > 8192 || i+1+hdr+n > len(b) {
			continue
		}
		tlv := b[i : i+1+hdr+n]
		if _, err := x509.ParsePKCS8PrivateKey(tlv); err == nil {
			return "DER PKCS#8 key"
		}
		if _, err := x509.ParseECPrivateKey(tlv); err == nil {
			return "DER EC key"
		}
		if _, err := x509.ParsePKCS1PrivateKey(tlv); err == nil {
			return "DER PKCS#1 key"
		}
	}
	return ""
}

// derLen decodes a DER length; it returns the length and the header size.
func derLen(b []byte) (int, int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] < 0x80 {
		return int(b[0]), 1
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 2 || len(b) < 1+k {
		return 0, 0
	}
	n := 0
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k
}

// Scanner holds the compiled patterns for FindEncoded.
type Scanner struct {
	encodedRun *regexp.Regexp
	hexRun     *regexp.Regexp
}

// NewScanner compiles the patterns once.
func NewScanner() *Scanner {
	return &Scanner{
		encodedRun: regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}={0,2}`),
		hexRun:     regexp.MustCompile(`[0-9a-fA-F]{40,}`),
	}
}

// FindEncoded is Find, also looking inside the hex and base64 runs of v
// (whole or embedded in JSON), since text columns may carry keys that way.
func (s *Scanner) FindEncoded(v []byte, secrets map[string][]byte) string {
	if f := Find(v, secrets); f != "" {
		return f
	}
	for _, run := range s.hexRun.FindAll(v, -1) {
		r := string(run)
		for _, h := range []string{r, r[1:], r[:len(r)-1]} {
			if d, err := hex.DecodeString(h); err == nil {
				if f := Find(d, secrets); f != "" {
					return f + " (hex)"
				}
			}
		}
	}
	for _, run := range s.encodedRun.FindAll(v, -1) {
		r := strings.TrimRight(string(run), "=")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if d, err := enc.WithPadding(base64.NoPadding).DecodeString(r); err == nil {
				if f := Find(d, secrets); f != "" {
					return f + " (base64)"
				}
			}
		}
	}
	return ""
}
