// Package ocsp owns the OCSP wire format (RFC 6960) under the lightweight
// profile for pre-signed responses (RFC 5019, obsoleted by RFC 9919 with the
// same section structure; section numbers cited fit both): ParseRequest reads an untrusted request, an Issuer recognises
// the CertIDs that name one CA, a Responder signs a response for a
// delegated responder certificate built by ResponderTemplate, and
// ErrorResponse gives the unsigned error answers.
//
// It knows nothing of HTTP or storage: the revoke service decides which
// Answer to sign and caches the bytes; the web edge carries them.
package ocsp

import (
	"crypto"
	"errors"
	"strconv"
)

// MaxRequestBytes bounds a DER request read from the network. An unsigned
// request is about 70-190 bytes (SHA-1 to SHA-512 CertID, serial up to the
// 20 octets of RFC 5280 4.1.2.2), plus at most about 150 bytes for an RFC
// 9654 nonce (up to 128 octets) and a few dozen for an RFC 6960 4.4.3
// acceptable-responses extension. A signed request, which clients SHOULD
// NOT send (RFC 5019 2.1.2) and we accept without checking the signature,
// adds a signature (up to 512 bytes for RSA-4096) and usually the signer's
// certificate (1-2 KB). 4 KiB admits all of these and still makes every
// request a single small buffer and a bounded parse.
const MaxRequestBytes = 4096

// ResponseStatus is OCSPResponseStatus (RFC 6960 4.2.1).
type ResponseStatus int

// The response statuses. 4 is not used.
const (
	StatusSuccessful    ResponseStatus = 0
	StatusMalformed     ResponseStatus = 1 // malformedRequest
	StatusInternalError ResponseStatus = 2
	StatusTryLater      ResponseStatus = 3
	StatusSigRequired   ResponseStatus = 5
	StatusUnauthorized  ResponseStatus = 6
)

var statusNames = map[ResponseStatus]string{
	StatusSuccessful:    "successful",
	StatusMalformed:     "malformedRequest",
	StatusInternalError: "internalError",
	StatusTryLater:      "tryLater",
	StatusSigRequired:   "sigRequired",
	StatusUnauthorized:  "unauthorized",
}

// String returns the RFC 6960 name of the status.
func (s ResponseStatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "responseStatus(" + strconv.Itoa(int(s)) + ")"
}

// ErrorResponse returns the unsigned OCSPResponse carrying an error status
// (RFC 6960 4.2.1: no responseBytes). A status that is not one of the five
// error statuses yields internalError. Every call returns a new slice.
func ErrorResponse(status ResponseStatus) []byte {
	switch status {
	case StatusMalformed, StatusInternalError, StatusTryLater, StatusSigRequired, StatusUnauthorized:
	default:
		status = StatusInternalError
	}
	// SEQUENCE { ENUMERATED status }
	return []byte{0x30, 0x03, 0x0a, 0x01, byte(status)}
}

// Request parsing errors. Every error ParseRequest returns wraps exactly one
// of them; StatusFor maps them to the status to answer with.
var (
	// ErrMalformed: not DER, trailing data, over MaxRequestBytes, wrong
	// structure, an empty request list, a hash of the wrong length for its
	// algorithm, a negative serial, or a critical extension we do not know.
	ErrMalformed = errors.New("ocsp: malformed request")
	// ErrMultipleRequests: RFC 5019 2.1.1 requires exactly one Request in
	// the requestList; a pre-signing responder has one response per
	// certificate and answers malformedRequest rather than a partial answer.
	ErrMultipleRequests = errors.New("ocsp: request asks about more than one certificate")
	// ErrUnsupportedHash: the CertID hash algorithm is not SHA-1, SHA-256,
	// SHA-384 or SHA-512. The request is well formed, but we cannot tell
	// whether it names one of our CAs, so we are "not capable of responding
	// authoritatively": unauthorized (RFC 5019 2.2.3).
	ErrUnsupportedHash = errors.New("ocsp: unsupported CertID hash algorithm")
)

// StatusFor maps a ParseRequest error to the status a responder answers
// with: malformedRequest for ErrMalformed and ErrMultipleRequests,
// unauthorized for ErrUnsupportedHash, internalError for anything else.
func StatusFor(err error) ResponseStatus {
	switch {
	case err == nil:
		return StatusSuccessful
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrMultipleRequests):
		return StatusMalformed
	case errors.Is(err, ErrUnsupportedHash):
		return StatusUnauthorized
	}
	return StatusInternalError
}

// hashAlg is one supported CertID hash algorithm: its OID as DER content
// octets (compared without decoding) and its output size.
type hashAlg struct {
	hash crypto.Hash
	oid  []byte
	size int
}

// hashAlgs is the one table of CertID hash algorithms. Order is the index
// Issuer uses for its precomputed hashes.
var hashAlgs = [...]hashAlg{
	{crypto.SHA1, []byte{0x2b, 0x0e, 0x03, 0x02, 0x1a}, 20},                           // 1.3.14.3.2.26
	{crypto.SHA256, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}, 32}, // 2.16.840.1.101.3.4.2.1
	{crypto.SHA384, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02}, 48}, // 2.16.840.1.101.3.4.2.2
	{crypto.SHA512, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03}, 64}, // 2.16.840.1.101.3.4.2.3
}

// Hashes lists the supported CertID hash algorithms.
func Hashes() []crypto.Hash {
	out := make([]crypto.Hash, len(hashAlgs))
	for i, a := range hashAlgs {
		out[i] = a.hash
	}
	return out
}

// hashIndex returns the position of h in hashAlgs, or -1.
func hashIndex(h crypto.Hash) int {
	for i := range hashAlgs {
		if hashAlgs[i].hash == h {
			return i
		}
	}
	return -1
}
