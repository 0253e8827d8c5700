package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
)

// SANs lists every subject alternative name of a certificate as text.
func SANs(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs))
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// extKeyUsageNames is the one table of extended key usage names, as
// OpenSSL and RFC 5280 spell them.
func extKeyUsageNames() map[x509.ExtKeyUsage]string {
	return map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:                            "any",
		x509.ExtKeyUsageServerAuth:                     "serverAuth",
		x509.ExtKeyUsageClientAuth:                     "clientAuth",
		x509.ExtKeyUsageCodeSigning:                    "codeSigning",
		x509.ExtKeyUsageEmailProtection:                "emailProtection",
		x509.ExtKeyUsageTimeStamping:                   "timeStamping",
		x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
		x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
		x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
		x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
		x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
		x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
		x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
		x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
	}
}

// ExtKeyUsageNames names a certificate's extended key usages, known ones
// by name and others by OID.
func ExtKeyUsageNames(c *x509.Certificate) []string {
	names := extKeyUsageNames()
	out := make([]string, 0, len(c.ExtKeyUsage)+len(c.UnknownExtKeyUsage))
	for _, u := range c.ExtKeyUsage {
		if n, ok := names[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("EKU #%d", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

// KeyUsageNames names the bits of a key usage, in RFC 5280 bit order.
func KeyUsageNames(ku x509.KeyUsage) []string {
	bits := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"},
		{x509.KeyUsageContentCommitment, "contentCommitment"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
		{x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"},
		{x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"},
		{x509.KeyUsageEncipherOnly, "encipherOnly"},
		{x509.KeyUsageDecipherOnly, "decipherOnly"},
	}
	var out []string
	for _, b := range bits {
		if ku&b.bit != 0 {
			out = append(out, b.name)
		}
	}
	return out
}

// PrivateKeyPEM encodes a private key as a PKCS#8 "PRIVATE KEY" PEM block.
func PrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return out, nil
}

// Names are a certificate request's subject alternative names by type.
type Names struct {
	DNS    []string
	IPs    []net.IP
	Emails []string
	URIs   []*url.URL
}

// ParseNames sorts names into their SAN types, dropping repeats: an IP address, an email
// address (holds "@"), a URI (holds "://"), else a DNS name. A "dns:",
// "ip:", "email:" or "uri:" prefix says the type explicitly.
func ParseNames(names []string) (Names, error) {
	var out Names
	for _, raw := range names {
		n := strings.TrimSpace(raw)
		kind, rest, typed := strings.Cut(n, ":")
		kind = strings.ToLower(kind)
		if !typed || (kind != "dns" && kind != "ip" && kind != "email" && kind != "uri") {
			kind, rest = "", n
		}
		if rest == "" {
			return Names{}, fmt.Errorf("pki: empty name %q", raw)
		}
		switch {
		case kind == "ip" || (kind == "" && net.ParseIP(rest) != nil):
			ip := net.ParseIP(rest)
			if ip == nil {
				return Names{}, fmt.Errorf("pki: %q is not an IP address", rest)
			}
			if !slices.ContainsFunc(out.IPs, ip.Equal) {
				out.IPs = append(out.IPs, ip)
			}
		case kind == "uri" || (kind == "" && strings.Contains(rest, "://")):
			u, err := url.Parse(rest)
			if err != nil || u.Scheme == "" {
				return Names{}, fmt.Errorf("pki: %q is not an absolute URI", rest)
			}
			if !slices.ContainsFunc(out.URIs, func(v *url.URL) bool { return v.String() == u.String() }) {
				out.URIs = append(out.URIs, u)
			}
		case kind == "email" || (kind == "" && strings.Contains(rest, "@")):
			a, err := mail.ParseAddress(rest)
			if err != nil || a.Address != rest {
				return Names{}, fmt.Errorf("pki: %q is not a plain email address", rest)
			}
			if !slices.Contains(out.Emails, rest) {
				out.Emails = append(out.Emails, rest)
			}
		default:
			if strings.ContainsAny(rest, " /@:") {
				return Names{}, fmt.Errorf("pki: %q is not a DNS name", rest)
			}
			if d := strings.ToLower(rest); !slices.Contains(out.DNS, d) {
				out.DNS = append(out.DNS, d)
			}
		}
	}
	return out, nil
}

// NewCSR makes a PEM certificate signing request for key with the subject
// common name cn (may be empty) and the given alternative names.
func NewCSR(r io.Reader, key crypto.Signer, cn string, names Names) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: names.DNS, IPAddresses: names.IPs, EmailAddresses: names.Emails, URIs: names.URIs,
	}
	der, err := x509.CreateCertificateRequest(r, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
