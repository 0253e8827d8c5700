// Package revoke owns revocation: recording revocations (single, bulk and
// a subordinate CA's own), building and refreshing each CA's CRL, and
// keeping pre-signed OCSP responses so an OCSP request costs a lookup. With
// issue, it is the only package that holds CA signers.
package revoke

import (
	"time"

	"github.com/certwright/certwright/internal/keys"
)

// Responder is a CA's delegated OCSP responder: a short-lived certificate
// with EKU OCSPSigning and id-pkix-ocsp-nocheck, and its wrapped key.
type Responder struct {
	CAID      string
	CertDER   []byte
	Key       keys.Ref
	NotAfter  time.Time
	CreatedAt time.Time
}
