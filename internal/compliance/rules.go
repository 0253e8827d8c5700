package compliance

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
)

// Rules a finding can name. A zlint finding's rule is RuleLint + ":" +
// the lint's name.
const (
	RuleCertificate = "certificate"         // the stored DER does not parse
	RuleKey         = "key"                 // key algorithm and size vs policy
	RuleProfile     = "profile"             // the issuing profile no longer exists
	RuleSignature   = "signature_algorithm" // SHA-1 / MD5 and unknown algorithms
	RuleValidity    = "validity_period"     // public certificates over 398 days
	RuleExpiry      = "expiry"              // expired, or expiring within a week
	RuleChain       = "chain"               // imported: chain incomplete
	RuleLint        = "zlint"
)

// Policy thresholds.
const (
	// MaxPublicValidityDays is the longest validity browsers accept for a
	// publicly trusted TLS certificate issued since September 2020.
	MaxPublicValidityDays = 398
	// ExpiryWarning is how close to expiry a certificate earns a warning.
	ExpiryWarning = 7 * 24 * time.Hour
	// PublicTag marks a certificate as publicly trusted whatever its chain.
	PublicTag = "public"
)

// keyRule is the policy for one key family of imported certificates.
type keyRule struct {
	family  string
	minBits int   // RSA: the smallest modulus
	sizes   []int // ECDSA: the curves allowed; nil: any size from minBits
}

// importedKeyPolicy is what an imported certificate's key must be: what the
// CA/Browser Forum Baseline Requirements and the root programs accept.
var importedKeyPolicy = []keyRule{
	{family: pki.FamilyRSA, minBits: 2048},
	{family: pki.FamilyECDSA, sizes: []int{256, 384}},
	{family: pki.FamilyEd25519},
}

// checkImportedKey returns "" when fam-bits meets importedKeyPolicy, or why not.
func checkImportedKey(fam string, bits int) string {
	for _, r := range importedKeyPolicy {
		if r.family != fam {
			continue
		}
		if r.sizes != nil && !slices.Contains(r.sizes, bits) {
			return fmt.Sprintf("%s P-%d key: the policy for imported certificates allows %s", fam, bits, curveList(r.sizes))
		}
		if bits < r.minBits {
			return fmt.Sprintf("%s %d-bit key is below the %d-bit minimum for imported certificates", fam, bits, r.minBits)
		}
		return ""
	}
	if fam == "" {
		fam = "unknown"
	}
	return fmt.Sprintf("%s keys are not allowed: the policy for imported certificates allows RSA >= 2048 bits, ECDSA %s and Ed25519", fam, curveList(importedKeyPolicy[1].sizes))
}

func curveList(sizes []int) string {
	s := make([]string, len(sizes))
	for i, b := range sizes {
		s[i] = fmt.Sprintf("P-%d", b)
	}
	return strings.Join(s, " or ")
}

// checkProfileKey returns "" when pub meets the profile's key rules, or
// the profile's own explanation.
func checkProfileKey(p *profile.Profile, pub crypto.PublicKey) string {
	// Check evaluates the keys rule first: a violation of any later rule
	// means the key passed (the request here carries nothing but the key).
	err := p.Check(profile.Request{PublicKey: pub})
	var v *profile.Violation
	if errors.As(err, &v) && v.Rule == profile.RuleKeys {
		return v.Message + " (profile " + p.Name + ")"
	}
	return ""
}

// weakSignatures are the signature algorithms whose hash is broken:
// collisions in MD2, MD5 and SHA-1 have been demonstrated.
var weakSignatures = map[x509.SignatureAlgorithm]string{
	x509.MD2WithRSA:    "MD2",
	x509.MD5WithRSA:    "MD5",
	x509.SHA1WithRSA:   "SHA-1",
	x509.DSAWithSHA1:   "SHA-1",
	x509.ECDSAWithSHA1: "SHA-1",
}

// checkSignature returns a finding for a weak or unknown signature algorithm.
func checkSignature(c *x509.Certificate) *Finding {
	if hash, weak := weakSignatures[c.SignatureAlgorithm]; weak {
		return &Finding{Rule: RuleSignature, Severity: SeverityError,
			Message: fmt.Sprintf("signed with %s (%s): %s collisions are practical; reissue with SHA-256 or better", c.SignatureAlgorithm, hash, hash)}
	}
	if c.SignatureAlgorithm == x509.UnknownSignatureAlgorithm {
		return &Finding{Rule: RuleSignature, Severity: SeverityWarning,
			Message: "signature algorithm is not one Certwright recognises; check it by hand"}
	}
	return nil
}
