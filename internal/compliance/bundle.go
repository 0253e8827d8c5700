package compliance

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Import limits. They bound what one import reads and parses.
const (
	// MaxImportFile is the largest file (PEM bundle or DER certificate).
	MaxImportFile = 1 << 20
	// MaxImportCertificates is the most certificates one import may hold,
	// over all its files.
	MaxImportCertificates = 1000
	// MaxImportFiles is the most files one import may name.
	MaxImportFiles = 1000
)

// ErrInvalid is matched (errors.Is) by every refused import: the input is
// not something Certwright imports, and nothing was stored.
var ErrInvalid = errors.New("compliance: import refused")

// InputError says what is wrong with one file of an import. It matches
// ErrInvalid.
type InputError struct {
	File string
	// Block is the 1-based PEM block at fault, 0 for the file as a whole.
	Block int
	// Type is the PEM type of that block, when the type is the problem.
	Type string
	// PrivateKey is set when the file holds a private key: the CLI refuses
	// to send such a file, and the server refuses to read it.
	PrivateKey bool
	Reason     string
}

func (e *InputError) Error() string {
	where := e.File
	if e.Block > 0 {
		where += fmt.Sprintf(": block %d", e.Block)
	}
	return where + " " + e.Reason
}

// Unwrap makes every InputError match ErrInvalid.
func (e *InputError) Unwrap() error { return ErrInvalid }

const keyHint = "Certwright never stores keys of imported certificates; remove it and import the certificates only"

// pemLabels returns the type of every "-----BEGIN TYPE-----" line in data,
// in order, whether or not its block is well formed: a private key in a
// truncated block must be refused as surely as one in a good block.
func pemLabels(data []byte) []string {
	const begin = "-----BEGIN "
	var out []string
	rest := data
	for {
		i := bytes.Index(rest, []byte(begin))
		if i < 0 {
			return out
		}
		rest = rest[i+len(begin):]
		label := rest
		if j := bytes.IndexAny(label, "\r\n"); j >= 0 {
			label = label[:j]
		}
		out = append(out, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(label)), "-----")))
	}
}

// isPrivateKeyLabel matches PRIVATE KEY, RSA/EC/DSA/OPENSSH/ENCRYPTED
// PRIVATE KEY, PGP PRIVATE KEY BLOCK and the like.
func isPrivateKeyLabel(label string) bool {
	return strings.Contains(strings.ToUpper(label), "PRIVATE KEY")
}

// isDERPrivateKey reports whether data parses as an unencrypted private key
// in one of the DER encodings x509 knows.
func isDERPrivateKey(data []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(data)
	return err == nil
}

// ParseBundle reads the certificates of one import file: a PEM bundle of
// one or more CERTIFICATE blocks, or a single DER certificate. It refuses,
// with an *InputError naming the file and block, a file that is empty, too
// large, holds a private key (in any PEM block, well formed or not, or as
// DER), holds any other kind of PEM block (CSR, CRL, public key, ...),
// holds a malformed block, or is neither PEM nor a DER certificate.
func ParseBundle(name string, data []byte) ([]*x509.Certificate, error) {
	fail := func(block int, typ, format string, a ...any) error {
		return &InputError{File: name, Block: block, Type: typ, Reason: fmt.Sprintf(format, a...)}
	}
	if len(data) > MaxImportFile {
		return nil, fail(0, "", "is %d bytes, more than the %d-byte limit of one file", len(data), MaxImportFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fail(0, "", "is empty: there is no certificate to import")
	}
	labels := pemLabels(data)
	for i, l := range labels {
		if isPrivateKeyLabel(l) {
			return nil, &InputError{File: name, Block: i + 1, Type: l, PrivateKey: true,
				Reason: fmt.Sprintf("is a private key (%s): %s", l, keyHint)}
		}
	}
	if len(labels) == 0 {
		if isDERPrivateKey(data) {
			return nil, &InputError{File: name, Type: "DER", PrivateKey: true,
				Reason: "is a private key (DER): " + keyHint}
		}
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fail(0, "", "is neither PEM certificates nor a DER certificate (%v)", err)
		}
		return []*x509.Certificate{c}, nil
	}
	if len(labels) > MaxImportCertificates {
		return nil, fail(0, "", "holds %d PEM blocks, more than the %d certificates one import may hold", len(labels), MaxImportCertificates)
	}
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if n-1 != len(labels) {
				return nil, fail(0, "", "holds %d PEM headers but only %d well-formed blocks: a block is malformed or truncated", len(labels), n-1)
			}
			break
		}
		if n > len(labels) || b.Type != labels[n-1] {
			// pem.Decode skipped a malformed block: the blocks no longer line up.
			return nil, fail(n, labels[min(n, len(labels))-1], "is malformed or truncated PEM")
		}
		if b.Type != "CERTIFICATE" {
			return nil, fail(n, b.Type, "is a %s, not a certificate: import certificates only (PEM type CERTIFICATE)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fail(n, b.Type, "is not a valid certificate: %v", err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}
