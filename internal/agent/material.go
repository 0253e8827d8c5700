package agent

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// maxFileSize bounds every certificate or key file the agent reads.
const maxFileSize = 1 << 20

// material is a certificate with its chain and private key.
type material struct {
	leaf  *x509.Certificate
	chain []*x509.Certificate
	key   crypto.Signer
	// roots are the roots the server sent with a certificate it just
	// issued; empty for files read from disk.
	roots []*x509.Certificate
}

// serial is the leaf's serial in the API's form.
func (m *material) serial() string { return pki.SerialHex(m.leaf.SerialNumber) }

// readLimited reads a whole file of at most maxFileSize bytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}

// parsePEM splits PEM data into its certificates and at most one private key.
func parsePEM(data []byte) (certs []*x509.Certificate, key crypto.Signer, err error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			if key != nil {
				return nil, nil, errors.New("more than one private key")
			}
			if key, err = parseKey(b); err != nil {
				return nil, nil, err
			}
		}
	}
	return certs, key, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported key block %q", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return s, nil
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// readCurrent reads what is deployed for e. A nil material comes with the
// reason the files cannot be used as they are; a leaf without a usable
// key or chain is still returned in cur so its serial can be replaced.
func readCurrent(e *Entry) (cur *material, leaf *x509.Certificate, problem string) {
	read := func(path string) ([]*x509.Certificate, crypto.Signer, string) {
		b, err := readLimited(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, path + " does not exist"
		}
		if err != nil {
			return nil, nil, fmt.Sprintf("cannot read %s: %v", path, err)
		}
		certs, key, err := parsePEM(b)
		if err != nil {
			return nil, nil, fmt.Sprintf("%s: %v", path, err)
		}
		return certs, key, ""
	}
	m := &material{}
	var certs []*x509.Certificate
	if e.Cert != "" {
		c, _, p := read(e.Cert)
		if p != "" {
			return nil, nil, p
		}
		if len(c) == 0 {
			return nil, nil, e.Cert + " holds no certificate"
		}
		certs = c
	}
	if e.Key != "" {
		_, k, p := read(e.Key)
		if p != "" {
			return nil, firstCert(certs), p
		}
		if k == nil {
			return nil, firstCert(certs), e.Key + " holds no private key"
		}
		m.key = k
	}
	if e.Bundle != "" {
		c, k, p := read(e.Bundle)
		if p != "" {
			return nil, firstCert(certs), p
		}
		if len(c) == 0 || k == nil {
			return nil, firstCert(certs), e.Bundle + " does not hold a certificate and a private key"
		}
		if certs == nil {
			certs = c
		} else if !c[0].Equal(certs[0]) {
			return nil, certs[0], fmt.Sprintf("%s and %s hold different certificates", e.Bundle, e.Cert)
		}
		if !keyMatches(certs[0], k) {
			return nil, certs[0], "the private key in " + e.Bundle + " does not belong to the certificate"
		}
		if m.key == nil {
			m.key = k
		}
	}
	if e.Chain != "" {
		if _, _, p := read(e.Chain); p != "" {
			return nil, firstCert(certs), p
		}
	}
	m.leaf, m.chain = certs[0], certs[1:]
	if !keyMatches(m.leaf, m.key) {
		return nil, m.leaf, "the private key does not belong to the certificate"
	}
	if alg, err := pki.AlgorithmOf(m.leaf.PublicKey); err != nil || alg != e.KeyType {
		return nil, m.leaf, fmt.Sprintf("the key is not %s as configured", e.KeyType)
	}
	if p := namesProblem(e, m.leaf); p != "" {
		return nil, m.leaf, p
	}
	return m, m.leaf, ""
}

func firstCert(certs []*x509.Certificate) *x509.Certificate {
	if len(certs) == 0 {
		return nil
	}
	return certs[0]
}

// namesProblem says how the certificate's names differ from e's, or "".
func namesProblem(e *Entry, c *x509.Certificate) string {
	want, got := entryNames(e), certNames(c)
	if !slices.Equal(want, got) {
		return fmt.Sprintf("the certificate names %s, the configuration %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	if cn := commonName(e); cn != "" && c.Subject.CommonName != cn {
		return fmt.Sprintf("the certificate's common name is %q, the configuration's %q", c.Subject.CommonName, cn)
	}
	return ""
}

func entryNames(e *Entry) []string {
	var out []string
	for _, n := range e.DNSNames {
		out = append(out, "dns:"+strings.ToLower(n))
	}
	for _, ip := range e.IPAddresses {
		out = append(out, "ip:"+ip.String())
	}
	for _, u := range e.URIs {
		out = append(out, "uri:"+u.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func certNames(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, "dns:"+strings.ToLower(n))
	}
	for _, ip := range c.IPAddresses {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out = append(out, "ip:"+ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, "uri:"+u.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// commonName is the subject common name requested for e: the configured
// one, else the first DNS name.
func commonName(e *Entry) string {
	if e.CommonName != "" {
		return e.CommonName
	}
	if len(e.DNSNames) > 0 {
		return e.DNSNames[0]
	}
	return ""
}

// newCSR makes the signing request for e with key.
func newCSR(e *Entry, key crypto.Signer, rnd io.Reader) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: commonName(e)},
		DNSNames:    e.DNSNames,
		IPAddresses: append([]net.IP(nil), e.IPAddresses...),
		URIs:        e.URIs,
	}
	der, err := x509.CreateCertificateRequest(rnd, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("agent: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func certsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// fileSpecs lays m out in e's files, in the order they are renamed: key,
// cert, chain, bundle.
func fileSpecs(e *Entry, m *material) ([]fileSpec, error) {
	kp, err := pki.PrivateKeyPEM(m.key)
	if err != nil {
		return nil, err
	}
	full := certsPEM(append([]*x509.Certificate{m.leaf}, m.chain...)...)
	var specs []fileSpec
	add := func(path string, data []byte, mode os.FileMode) {
		if path != "" {
			specs = append(specs, fileSpec{path: path, data: data, mode: mode, uid: e.UID, gid: e.GID})
		}
	}
	add(e.Key, kp, e.Mode.Key)
	add(e.Cert, full, e.Mode.Cert)
	add(e.Chain, certsPEM(m.chain...), e.Mode.Chain)
	if e.Bundle != "" {
		add(e.Bundle, append(slices.Clip(full), kp...), e.Mode.Bundle)
	}
	return specs, nil
}

// checkIssued checks the server's answer: the certificate is for our key
// and names, and chains to the root the server gave.
func checkIssued(e *Entry, key crypto.Signer, certPEM, chainPEM, rootPEM string) (*material, error) {
	certs, _, err := parsePEM([]byte(certPEM))
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("agent: the server's certificate_pem holds no certificate (%v)", err)
	}
	leaf := certs[0]
	chain, _, err := parsePEM([]byte(chainPEM))
	if err != nil {
		return nil, fmt.Errorf("agent: the server's chain_pem: %w", err)
	}
	// Some answers repeat the chain after the leaf; keep one copy.
	for _, c := range certs[1:] {
		if !slices.ContainsFunc(chain, c.Equal) {
			chain = append(chain, c)
		}
	}
	if !keyMatches(leaf, key) {
		return nil, errors.New("agent: the server's certificate is not for the key this agent generated")
	}
	if p := namesProblem(e, leaf); p != "" {
		return nil, fmt.Errorf("agent: the server's certificate does not match the request: %s", p)
	}
	roots, _, err := parsePEM([]byte(rootPEM))
	if err != nil {
		return nil, fmt.Errorf("agent: the server's root_pem: %w", err)
	}
	if len(roots) > 0 {
		// The chain is checked at a time inside the leaf's validity: the
		// structure matters here, and the host's clock may be off.
		at := leaf.NotBefore.Add(min(time.Minute, leaf.NotAfter.Sub(leaf.NotBefore)/2))
		opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, r := range roots {
			opts.Roots.AddCert(r)
		}
		for _, c := range chain {
			opts.Intermediates.AddCert(c)
		}
		if _, err := leaf.Verify(opts); err != nil {
			return nil, fmt.Errorf("agent: the server's certificate does not chain to its root: %w", err)
		}
	}
	return &material{leaf: leaf, chain: chain, key: key, roots: roots}, nil
}
