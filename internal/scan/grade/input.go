package grade

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // only to size keys a server still presents
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/scan/tlsprobe"
)

var fromProbeVersion = map[tlsprobe.Version]Protocol{
	tlsprobe.VersionSSL30: SSL3, tlsprobe.VersionTLS10: TLS10, tlsprobe.VersionTLS11: TLS11,
	tlsprobe.VersionTLS12: TLS12, tlsprobe.VersionTLS13: TLS13,
}

// FromReport turns a prober report and the certificate's findings into
// an Input. HSTS and insecure renegotiation are not probed by tlsprobe;
// set them on the result when known.
func FromReport(r *tlsprobe.Report, cert Cert) Input {
	in := Input{Cert: cert, SecureRenegotiation: r.SecureRenegotiation, FallbackSCSV: r.FallbackSCSV}
	for _, vr := range r.Versions {
		if !vr.Offered {
			continue
		}
		p := fromProbeVersion[vr.Version]
		in.Protocols = append(in.Protocols, p)
		for _, s := range vr.Suites {
			in.Suites = append(in.Suites, Suite{
				Protocol: p, Name: s.Name, ForwardSecret: s.ForwardSecret(), Anonymous: s.Anonymous(),
				Export: s.Export, AEAD: s.Mode == tlsprobe.ModeAEAD, RC4: s.Cipher == "RC4",
				Bits: s.Bits, BlockBits: s.BlockBits, KexStrength: s.KexStrength,
			})
		}
	}
	for _, g := range r.Groups {
		in.EphemeralStrengths = append(in.EphemeralStrengths, g.Strength)
	}
	in.EphemeralStrengths = append(in.EphemeralStrengths, r.DHPrimeBits...)
	in.EphemeralStrengths = append(in.EphemeralStrengths, r.ExportRSABits...)
	if len(in.Protocols) > 0 {
		fs := r.ForwardSecrecy.Preferred
		in.FSPreferred = &fs
	}
	return in
}

// CheckOptions are the inputs of a certificate check.
type CheckOptions struct {
	// ServerName is the name the chain must cover; empty skips the check.
	ServerName string
	// Roots are the trusted roots; nil means the system pool.
	Roots *x509.CertPool
	// Now is the time validity is judged at.
	Now time.Time
}

// CheckChain judges a served chain (DER, leaf first): the leaf key's
// strength and the trust problems the grade knows. Revocation is not
// checked here. An error means the chain could not be read at all.
func CheckChain(chain [][]byte, opts CheckOptions) (Cert, error) {
	if len(chain) == 0 {
		return Cert{}, errors.New("grade: the server sent no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Cert{}, fmt.Errorf("grade: parse certificate %d of the served chain: %w", i, err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	var out Cert
	out.KeyType, out.KeyBits, out.KeyStrength = keyStrength(leaf.PublicKey)
	add := func(p CertProblem) {
		for _, have := range out.Problems {
			if have == p {
				return
			}
		}
		out.Problems = append(out.Problems, p)
	}
	for i, c := range certs {
		if opts.Now.After(c.NotAfter) {
			add(CertExpired)
		}
		if opts.Now.Before(c.NotBefore) {
			add(CertNotYetValid)
		}
		if i == len(certs)-1 && selfSigned(c) {
			continue // a root's own signature is not what clients rely on
		}
		switch c.SignatureAlgorithm {
		case x509.MD2WithRSA, x509.MD5WithRSA:
			add(CertInsecureSignature)
		case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
			add(CertSHA1Signature)
		}
	}
	if opts.ServerName != "" && leaf.VerifyHostname(opts.ServerName) != nil {
		add(CertNameMismatch)
	}
	roots := opts.Roots
	if roots == nil {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			return out, fmt.Errorf("grade: load the system roots: %w", err)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Trust is judged inside the leaf's validity, so an expired chain is
	// reported as expired, not also as untrusted.
	at := opts.Now
	if at.After(leaf.NotAfter) || at.Before(leaf.NotBefore) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at})
	var unknown x509.UnknownAuthorityError
	var insecure x509.InsecureAlgorithmError
	switch {
	case err == nil:
	case errors.As(err, &insecure):
		// Already recorded from the signature algorithms above.
	case errors.As(err, &unknown) && len(certs) == 1 && selfSigned(leaf):
		add(CertSelfSigned)
	default:
		add(CertUntrusted)
	}
	return out, nil
}

// selfSigned reports whether c names itself as issuer and its own key
// verifies its signature (CheckSignatureFrom would also demand a CA).
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// keyStrength gives a public key's type, size and RSA-equivalent strength
// (NIST SP 800-57 Part 1 Table 2).
func keyStrength(pub any) (string, int, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen(), k.N.BitLen()
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen(), k.P.BitLen()
	case *ecdsa.PublicKey:
		n := k.Curve.Params().BitSize
		switch {
		case n >= 512:
			return "ECDSA", n, 15360
		case n >= 384:
			return "ECDSA", n, 7680
		case n >= 256:
			return "ECDSA", n, 3072
		case n >= 224:
			return "ECDSA", n, 2048
		}
		return "ECDSA", n, 1024
	case ed25519.PublicKey:
		return "Ed25519", 256, 3072
	}
	return "unknown", 0, 0
}
