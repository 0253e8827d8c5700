package api

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// encodeKey puts a managed private key into the answer, once, as PKCS#8 PEM
// or as a password-protected PKCS#12 (AES-256-CBC, PBKDF2-SHA256).
func encodeKey(out *apitypes.IssuedCertificate, res *issue.Result, format, password string) error {
	if res.Key == nil {
		return nil
	}
	if format == "pkcs12" {
		cas, _ := issue.SplitChain(res.Chain)
		p12, err := pkcs12.Modern.Encode(res.Key, res.Leaf, cas, password)
		if err != nil {
			return fmt.Errorf("api: encode PKCS#12: %w", err)
		}
		out.PKCS12 = p12
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(res.Key)
	if err != nil {
		return fmt.Errorf("api: encode private key: %w", err)
	}
	out.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	clear(der)
	return nil
}
