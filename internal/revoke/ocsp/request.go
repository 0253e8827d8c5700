package ocsp

import (
	"bytes"
	"crypto"
	stdasn1 "encoding/asn1"
	"math/big"
	"strconv"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// CertID names one certificate by its issuer and serial (RFC 6960 4.1.1).
type CertID struct {
	// Hash is crypto.SHA1, SHA256, SHA384 or SHA512.
	Hash crypto.Hash
	// NameHash is Hash over the DER of the issuer's subject.
	NameHash []byte
	// KeyHash is Hash over the issuer's subjectPublicKey bits.
	KeyHash []byte
	// Serial is the certificate serial number; never negative.
	Serial *big.Int
}

// Request is an OCSPRequest holding its one CertID (RFC 5019 2.1.1).
type Request struct {
	CertID
	// Nonce is the value of an id-pkix-ocsp-nonce request extension (RFC
	// 9654: the Nonce OCTET STRING inside extnValue; the raw extnValue when
	// a client left that wrapper out). Responses are signed ahead of time,
	// so it is not echoed: RFC 5019 2.2.1 tells such a responder to answer
	// without a nonce, and 4 tells clients to fall back to time checks.
	Nonce []byte
	// Signed reports that the request carried an optionalSignature. It is
	// not verified: RFC 5019 2.1.2 lets responders ignore it, and a
	// responder serving public status has nobody to authorise.
	Signed bool
}

// parseError carries which part of a request was wrong; it wraps one of the
// package's sentinel errors. A type rather than fmt.Errorf keeps rejecting
// garbage, the common attack, cheap.
type parseError struct {
	base error
	what string
}

func (e *parseError) Error() string { return e.base.Error() + ": " + e.what }
func (e *parseError) Unwrap() error { return e.base }

func malformed(what string) error { return &parseError{ErrMalformed, what} }

var (
	explicit0 = asn1.Tag(0).ContextSpecific().Constructed()
	explicit1 = asn1.Tag(1).ContextSpecific().Constructed()
	explicit2 = asn1.Tag(2).ContextSpecific().Constructed()
)

// Request extension OIDs (DER content octets) under id-pkix-ocsp
// (1.3.6.1.5.5.7.48.1), RFC 6960 4.4. A critical extension not in this
// table makes the request malformed (RFC 6960 4.4: unrecognised
// extensions are ignored unless critical).
var (
	oidNonce           = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02}
	knownRequestExtOID = [][]byte{
		oidNonce,
		{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x04}, // acceptable responses (4.4.3)
		{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x07}, // service locator (4.4.6)
		{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x08}, // preferred signature algorithms (4.4.7)
	}
)

// ParseRequest parses a DER OCSPRequest (RFC 6960 4.1.1) from an untrusted
// source. It is strict: DER lengths, no trailing data at any level, exactly
// one Request, a CertID hash of the length its algorithm produces, a
// non-negative minimally encoded serial. It does not verify signatures.
// The CertID hashes and the nonce alias der.
//
// Every error wraps ErrMalformed, ErrMultipleRequests or
// ErrUnsupportedHash; StatusFor gives the status to answer with.
func ParseRequest(der []byte) (*Request, error) {
	if len(der) == 0 {
		return nil, malformed("empty")
	}
	if len(der) > MaxRequestBytes {
		return nil, malformed(strconv.Itoa(len(der)) + " bytes exceeds " + strconv.Itoa(MaxRequestBytes))
	}
	in := cryptobyte.String(der)
	var ocspReq, tbs cryptobyte.String
	if !in.ReadASN1(&ocspReq, asn1.SEQUENCE) {
		return nil, malformed("not a DER SEQUENCE")
	}
	if !in.Empty() {
		return nil, malformed("trailing data")
	}
	if !ocspReq.ReadASN1(&tbs, asn1.SEQUENCE) {
		return nil, malformed("tbsRequest")
	}
	req := &Request{}
	var sig cryptobyte.String
	if !ocspReq.ReadOptionalASN1(&sig, &req.Signed, explicit0) || !ocspReq.Empty() {
		return nil, malformed("optionalSignature")
	}
	if req.Signed && !wellFormedSignature(sig) {
		return nil, malformed("optionalSignature")
	}

	// version [0] EXPLICIT Version DEFAULT v1. DER omits the default; an
	// explicit v1 from a BER encoder is tolerated, any other version is not.
	var vs cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&vs, &hasVersion, explicit0) {
		return nil, malformed("version")
	}
	if hasVersion {
		var v int64
		if !vs.ReadASN1Integer(&v) || !vs.Empty() || v != 0 {
			return nil, malformed("version")
		}
	}
	// requestorName [1] EXPLICIT GeneralName: unauthenticated, ignored
	// (RFC 5019 2.1.2), but it must be one element.
	var rn cryptobyte.String
	var hasName bool
	if !tbs.ReadOptionalASN1(&rn, &hasName, explicit1) {
		return nil, malformed("requestorName")
	}
	if hasName {
		var gn cryptobyte.String
		var tag asn1.Tag
		if !rn.ReadAnyASN1Element(&gn, &tag) || !rn.Empty() {
			return nil, malformed("requestorName")
		}
	}
	var list cryptobyte.String
	if !tbs.ReadASN1(&list, asn1.SEQUENCE) {
		return nil, malformed("requestList")
	}
	var exts cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&exts, &hasExts, explicit2) || !tbs.Empty() {
		return nil, malformed("requestExtensions")
	}
	if hasExts {
		if err := parseExtensions(exts, &req.Nonce); err != nil {
			return nil, err
		}
	}

	if list.Empty() {
		return nil, malformed("empty requestList")
	}
	var one cryptobyte.String
	if !list.ReadASN1(&one, asn1.SEQUENCE) {
		return nil, malformed("Request")
	}
	if !list.Empty() {
		return nil, &parseError{ErrMultipleRequests, "RFC 5019 2.1.1 allows one"}
	}
	var certID cryptobyte.String
	if !one.ReadASN1(&certID, asn1.SEQUENCE) {
		return nil, malformed("CertID")
	}
	var single cryptobyte.String
	var hasSingle bool
	if !one.ReadOptionalASN1(&single, &hasSingle, explicit0) || !one.Empty() {
		return nil, malformed("singleRequestExtensions")
	}
	if hasSingle {
		if err := parseExtensions(single, nil); err != nil {
			return nil, err
		}
	}
	if err := parseCertID(certID, &req.CertID); err != nil {
		return nil, err
	}
	return req, nil
}

// parseCertID reads the content of a CertID SEQUENCE into id. Structure
// errors come before ErrUnsupportedHash, so garbage is always malformed.
func parseCertID(s cryptobyte.String, id *CertID) error {
	var alg, oidElem, oid cryptobyte.String
	if !s.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1Element(&oidElem, asn1.OBJECT_IDENTIFIER) {
		return malformed("CertID hashAlgorithm")
	}
	if e := oidElem; !e.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
		return malformed("CertID hashAlgorithm")
	}
	// RFC 5754 3: SHA-2 parameters are absent, or NULL from older encoders
	// (and always NULL for SHA-1 in practice); nothing else.
	if !alg.Empty() {
		var params cryptobyte.String
		if !alg.ReadASN1(&params, asn1.NULL) || !params.Empty() || !alg.Empty() {
			return malformed("CertID hashAlgorithm parameters")
		}
	}
	if !s.ReadASN1Bytes(&id.NameHash, asn1.OCTET_STRING) || !s.ReadASN1Bytes(&id.KeyHash, asn1.OCTET_STRING) {
		return malformed("CertID hashes")
	}
	id.Serial = new(big.Int)
	if !s.ReadASN1Integer(id.Serial) || !s.Empty() {
		return malformed("CertID serialNumber")
	}
	if id.Serial.Sign() < 0 {
		return malformed("negative serialNumber")
	}
	for i := range hashAlgs {
		if bytes.Equal(oid, hashAlgs[i].oid) {
			id.Hash = hashAlgs[i].hash
			if len(id.NameHash) != hashAlgs[i].size || len(id.KeyHash) != hashAlgs[i].size {
				return malformed("CertID hash length does not match " + id.Hash.String())
			}
			return nil
		}
	}
	var o stdasn1.ObjectIdentifier
	if !oidElem.ReadASN1ObjectIdentifier(&o) {
		return malformed("CertID hashAlgorithm OID")
	}
	return &parseError{ErrUnsupportedHash, o.String()}
}

// parseExtensions reads the content of an [n] EXPLICIT Extensions: a
// non-empty SEQUENCE OF Extension. When nonce is non-nil it receives the
// nonce value.
func parseExtensions(s cryptobyte.String, nonce *[]byte) error {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !s.Empty() || seq.Empty() {
		return malformed("extensions")
	}
	for !seq.Empty() {
		var ext, oid, value cryptobyte.String
		if !seq.ReadASN1(&ext, asn1.SEQUENCE) || !ext.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
			return malformed("extension")
		}
		critical := false
		if ext.PeekASN1Tag(asn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical) {
			return malformed("extension critical flag")
		}
		if !ext.ReadASN1(&value, asn1.OCTET_STRING) || !ext.Empty() {
			return malformed("extension value")
		}
		known := false
		for _, k := range knownRequestExtOID {
			if bytes.Equal(oid, k) {
				known = true
				break
			}
		}
		if critical && !known {
			return malformed("unknown critical extension")
		}
		if nonce != nil && bytes.Equal(oid, oidNonce) {
			inner := value
			var n cryptobyte.String
			if inner.ReadASN1(&n, asn1.OCTET_STRING) && inner.Empty() {
				*nonce = n
			} else {
				*nonce = value
			}
		}
	}
	return nil
}

// wellFormedSignature checks the shape of a Signature (RFC 6960 4.1.1)
// without verifying it: SEQUENCE { AlgorithmIdentifier, BIT STRING,
// [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }.
func wellFormedSignature(s cryptobyte.String) bool {
	var sig, alg, bits, certs cryptobyte.String
	if !s.ReadASN1(&sig, asn1.SEQUENCE) || !s.Empty() {
		return false
	}
	if !sig.ReadASN1(&alg, asn1.SEQUENCE) || !sig.ReadASN1(&bits, asn1.BIT_STRING) {
		return false
	}
	var hasCerts bool
	if !sig.ReadOptionalASN1(&certs, &hasCerts, explicit0) || !sig.Empty() {
		return false
	}
	if hasCerts {
		var list cryptobyte.String
		if !certs.ReadASN1(&list, asn1.SEQUENCE) || !certs.Empty() {
			return false
		}
	}
	return true
}
