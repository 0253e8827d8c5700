package compliance

import (
	"bytes"
	"crypto/x509"
	"errors"
)

// maxChainDepth bounds every walk up a chain.
const maxChainDepth = 10

// issued reports whether parent issued child: the names chain, the key
// identifiers agree when both are present, and the signature verifies — or
// cannot be checked because Go refuses its algorithm (SHA-1, MD5), a
// weakness the signature rule reports on its own.
func issued(parent, child *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 && !bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId) {
		return false
	}
	err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature)
	if err == nil {
		return true
	}
	var weak x509.InsecureAlgorithmError
	return errors.As(err, &weak)
}

// selfSigned reports whether c is its own issuer.
func selfSigned(c *x509.Certificate) bool { return issued(c, c) }

// issuerIn returns the first certificate of pool, other than c itself, that
// issued c.
func issuerIn(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, p := range pool {
		if !bytes.Equal(p.Raw, c.Raw) && issued(p, c) {
			return p
		}
	}
	return nil
}

// buildChain walks from leaf up through pool and returns the path, leaf
// first, ending at a self-signed certificate or where no issuer is found.
func buildChain(leaf *x509.Certificate, pool []*x509.Certificate) []*x509.Certificate {
	chain := []*x509.Certificate{leaf}
	cur := leaf
	for len(chain) < maxChainDepth && !selfSigned(cur) {
		next := issuerIn(cur, pool)
		if next == nil || containsCert(chain, next) {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}
