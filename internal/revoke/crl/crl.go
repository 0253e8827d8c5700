// Package crl builds and signs X.509 v2 certificate revocation lists
// (RFC 5280 section 5) by streaming entries straight into DER, so a CA with a
// million revoked certificates gets its CRL in well under a second and in
// memory about the size of the CRL itself.
//
// Use NewBuilder with the expected entry count, Add each revoked
// certificate, then Sign once with the CA certificate and key:
//
//	b := crl.NewBuilder(len(revoked))
//	for _, r := range revoked {
//		if err := b.Add(crl.Entry{Serial: r.Serial, RevokedAt: r.At, Reason: r.Reason}); err != nil {
//			return err
//		}
//	}
//	der, err := b.Sign(rand.Reader, crl.Params{Issuer: caCert, Signer: caKey, Number: n, ThisUpdate: now, NextUpdate: now.Add(7 * 24 * time.Hour)})
//
// # Memory
//
// Add appends each entry's DER to one growing buffer (about 36 to 82 bytes
// per entry). The buffer starts with headroom for the CRL's header, issuer
// name and times, and NewBuilder reserves capacity for the trailing
// extensions and signature, so Sign normally writes the whole
// CertificateList around the entries in place, hashes that one contiguous
// TBSCertList and returns a slice of the same buffer: peak memory is the
// buffer, about the size of the CRL (a million entries of our serials make
// a 46 MB CRL in a 64 MB buffer, of which only the written part becomes
// resident). When the headroom or spare capacity is too small (an issuer
// name over about 900 bytes, a buffer that Add grew to just fit) or the
// buffer would be less than half used (a size hint far above the real
// count), Sign instead copies the entries once into a buffer of exactly the
// CRL's size, so peak memory is the Builder's buffer plus the CRL.
//
// Because the returned CRL shares the Builder's buffer, a successful Sign
// spends the Builder: further Add or Sign calls return ErrSigned. A failed
// Sign leaves the Builder as it was. A Builder is not safe for concurrent use.
package crl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha256" // register SHA-256 for crypto.Hash.New
	_ "crypto/sha512" // register SHA-384 and SHA-512 for crypto.Hash.New
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Errors returned by Add and Sign, wrapped with the details; branch with
// errors.Is.
var (
	ErrInvalidSerial     = errors.New("crl: invalid serial")
	ErrUnsupportedReason = errors.New("crl: unsupported revocation reason")
	ErrInvalidTime       = errors.New("crl: invalid time")
	ErrInvalidParams     = errors.New("crl: invalid parameters")
	ErrKeyMismatch       = errors.New("crl: signer key does not match the issuer certificate")
	ErrBadSignature      = errors.New("crl: signature does not verify against the issuer certificate")
	ErrSigned            = errors.New("crl: builder already signed")
)

// maxSerialOctets is the RFC 5280 section 4.1.2.2 limit on serial numbers,
// which section 5.2.3 repeats for CRL numbers.
const maxSerialOctets = 20

// Entry is one revoked certificate (RFC 5280 section 5.1.2.6).
type Entry struct {
	// Serial is the big-endian magnitude of the certificate's serial
	// number. Leading zero octets are ignored; at most 20 octets may remain.
	// Add copies it, so the caller may reuse the backing array.
	Serial []byte
	// RevokedAt is the revocationDate, truncated to the second.
	RevokedAt time.Time
	// Reason becomes the reasonCode entry extension (section 5.3.1).
	// ReasonUnspecified adds no extension, as the RFC recommends.
	Reason pki.Reason
	// InvalidityDate, when not zero, becomes the invalidityDate entry
	// extension (section 5.3.2), truncated to the second.
	InvalidityDate time.Time
}

// Params are what Sign needs besides the entries.
type Params struct {
	// Issuer is the CA certificate: its RawSubject becomes the CRL issuer
	// and its SubjectKeyId the authority key identifier. Its key usage, if
	// present, must include cRLSign.
	Issuer *x509.Certificate
	// Signer holds the key of Issuer; its public key must equal
	// Issuer.PublicKey.
	Signer crypto.Signer
	// Number is the cRLNumber extension (section 5.2.3): non-negative and
	// at most 20 octets.
	Number *big.Int
	// ThisUpdate and NextUpdate are truncated to the second; NextUpdate must
	// come after ThisUpdate.
	ThisUpdate time.Time
	NextUpdate time.Time
}

// DER tags used here.
const (
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagContext0        = 0xa0 // [0] EXPLICIT, constructed
	tagKeyIdentifier   = 0x80 // [0] IMPLICIT OCTET STRING
)

// Fixed DER fragments of the entry extensions, up to the variable value.
var (
	// Extension { id-ce-cRLReasons (2.5.29.21), OCTET STRING { ENUMERATED, 1 octet } }
	reasonExtPrefix = []byte{tagSequence, 10, 0x06, 3, 0x55, 0x1d, 0x15, tagOctetString, 3, 0x0a, 1}
	// Extension { id-ce-invalidityDate (2.5.29.24), OCTET STRING { GeneralizedTime, 15 octets } }
	invalidityExtPrefix = []byte{tagSequence, 24, 0x06, 3, 0x55, 0x1d, 0x18, tagOctetString, 17, tagGeneralizedTime, 15}

	oidAuthorityKeyID = []byte{0x06, 3, 0x55, 0x1d, 0x23} // 2.5.29.35
	oidCRLNumber      = []byte{0x06, 3, 0x55, 0x1d, 0x14} // 2.5.29.20
	version2          = []byte{tagInteger, 1, 1}
)

const (
	reasonExtLen     = 12 // len(reasonExtPrefix) + 1
	invalidityExtLen = 26 // len(invalidityExtPrefix) + 15
	// maxEntryLen bounds one encoded entry: header 2, serial INTEGER 2+21,
	// GeneralizedTime 2+15, extensions 2+12+26. It is below 128, so every
	// entry's SEQUENCE length fits in one octet.
	maxEntryLen = 2 + 23 + 17 + 2 + reasonExtLen + invalidityExtLen

	// entryEstimate sizes the buffer for NewBuilder's hint: a 17-octet
	// serial with UTCTime, a reason and an invalidity date is 76 octets,
	// without the invalidity date 50, bare 36.
	entryEstimate = 64
	// headroom is left in front of the entries for the CertificateList and
	// TBSCertList headers, version, algorithm, issuer name and both times.
	headroom = 1024
	// tailroom is reserved after the entries for the CRL extensions,
	// signature algorithm and signature (a 4096-bit RSA signature is 512
	// octets).
	tailroom = 1024
	// maxHint caps NewBuilder's up-front allocation at 4 GiB.
	maxHint = 1 << 26
	// maxOuterHeader is the largest CertificateList header Sign writes.
	maxOuterHeader = 1 + 1 + 8
)

// scheme is one signature algorithm as Certwright CAs use it.
type scheme struct {
	algID  []byte      // DER AlgorithmIdentifier
	hash   crypto.Hash // 0 for pure Ed25519, which signs the message itself
	maxSig func(pub crypto.PublicKey) int
	verify func(pub crypto.PublicKey, msg, sig []byte) bool // msg is the digest, or the TBS when hash is 0
}

// schemes is keyed by what pki.SignatureAlgorithmFor picks for the CA key,
// so CRLs are signed the way the CA's certificates are.
var schemes = map[x509.SignatureAlgorithm]scheme{
	x509.SHA256WithRSA: {
		// sha256WithRSAEncryption (1.2.840.113549.1.1.11) with NULL parameters (RFC 4055 section 5)
		algID:  []byte{tagSequence, 13, 0x06, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00},
		hash:   crypto.SHA256,
		maxSig: rsaSigLen,
		verify: verifyRSA(crypto.SHA256),
	},
	x509.ECDSAWithSHA256: {
		// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), parameters absent (RFC 5758 section 3.2)
		algID:  []byte{tagSequence, 10, 0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02},
		hash:   crypto.SHA256,
		maxSig: ecdsaSigLen,
		verify: verifyECDSA,
	},
	x509.ECDSAWithSHA384: {
		algID:  []byte{tagSequence, 10, 0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03},
		hash:   crypto.SHA384,
		maxSig: ecdsaSigLen,
		verify: verifyECDSA,
	},
	x509.ECDSAWithSHA512: {
		algID:  []byte{tagSequence, 10, 0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04},
		hash:   crypto.SHA512,
		maxSig: ecdsaSigLen,
		verify: verifyECDSA,
	},
	x509.PureEd25519: {
		// id-Ed25519 (1.3.101.112), parameters absent (RFC 8410 section 3)
		algID:  []byte{tagSequence, 5, 0x06, 3, 0x2b, 0x65, 0x70},
		maxSig: func(crypto.PublicKey) int { return ed25519.SignatureSize },
		verify: func(pub crypto.PublicKey, msg, sig []byte) bool {
			return ed25519.Verify(pub.(ed25519.PublicKey), msg, sig)
		},
	},
}

func rsaSigLen(pub crypto.PublicKey) int { return (pub.(*rsa.PublicKey).N.BitLen() + 7) / 8 }

// ecdsaSigLen is the longest DER Ecdsa-Sig-Value: two INTEGERs of the
// curve's size plus a sign octet each.
func ecdsaSigLen(pub crypto.PublicKey) int {
	n := (pub.(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	return 3 + 2*(2+n+1)
}

func verifyRSA(h crypto.Hash) func(crypto.PublicKey, []byte, []byte) bool {
	return func(pub crypto.PublicKey, digest, sig []byte) bool {
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), h, digest, sig) == nil
	}
}

func verifyECDSA(pub crypto.PublicKey, digest, sig []byte) bool {
	return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest, sig)
}

// Builder accumulates the DER of revokedCertificates entries in one buffer.
// The zero value is not usable; call NewBuilder.
type Builder struct {
	buf    []byte // headroom, then the encoded entries
	n      int
	signed bool
}

// NewBuilder returns a Builder sized for sizeHint entries. A hint that is
// too small only costs buffer growth; one far too large makes Sign copy.
func NewBuilder(sizeHint int) *Builder {
	sizeHint = min(max(sizeHint, 0), maxHint)
	return &Builder{buf: make([]byte, headroom, headroom+sizeHint*entryEstimate+tailroom)}
}

// Len reports the number of entries added, also after Sign.
func (b *Builder) Len() int { return b.n }

// Add encodes e as the next revokedCertificates entry. Entries appear in the
// CRL in the order added. An invalid entry is an error and leaves the
// Builder unchanged.
func (b *Builder) Add(e Entry) error {
	if b.signed {
		return ErrSigned
	}
	if len(e.Serial) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidSerial)
	}
	serial := e.Serial
	for len(serial) > 0 && serial[0] == 0 {
		serial = serial[1:]
	}
	switch {
	case len(serial) == 0:
		return fmt.Errorf("%w: zero (serials are positive)", ErrInvalidSerial)
	case len(serial) > maxSerialOctets:
		return fmt.Errorf("%w: %d octets, at most %d allowed", ErrInvalidSerial, len(serial), maxSerialOctets)
	}
	if !e.Reason.Valid() {
		return fmt.Errorf("%w: code %d (serial %x)", ErrUnsupportedReason, int(e.Reason), serial)
	}
	if e.RevokedAt.IsZero() {
		return fmt.Errorf("%w: revocation time of serial %x is not set", ErrInvalidTime, serial)
	}
	revoked, err := toStamp("revocation time", e.RevokedAt)
	if err != nil {
		return err
	}
	hasInvalidity := !e.InvalidityDate.IsZero()
	var invalidity stamp
	if hasInvalidity {
		if invalidity, err = toStamp("invalidity date", e.InvalidityDate); err != nil {
			return err
		}
	}

	pad := int(serial[0] >> 7) // a set high bit would read as negative
	intLen := pad + len(serial)
	extLen := 0
	if e.Reason != pki.ReasonUnspecified {
		extLen += reasonExtLen
	}
	if hasInvalidity {
		extLen += invalidityExtLen
	}
	bodyLen := 2 + intLen + revoked.encodedLen()
	if extLen > 0 {
		bodyLen += 2 + extLen
	}

	buf := slices.Grow(b.buf, 2+bodyLen)
	buf = append(buf, tagSequence, byte(bodyLen), tagInteger, byte(intLen))
	if pad == 1 {
		buf = append(buf, 0)
	}
	buf = append(buf, serial...)
	buf = revoked.appendTime(buf)
	if extLen > 0 {
		// The order crypto/x509 uses, so the output is byte for byte
		// what x509.CreateRevocationList would make.
		buf = append(buf, tagSequence, byte(extLen))
		if hasInvalidity {
			buf = append(buf, invalidityExtPrefix...)
			buf = invalidity.appendDigits(buf, true)
		}
		if e.Reason != pki.ReasonUnspecified {
			buf = append(buf, reasonExtPrefix...)
			buf = append(buf, byte(e.Reason))
		}
	}
	b.buf = buf
	b.n++
	return nil
}

// Sign assembles the TBSCertList around the added entries, signs it with
// p.Signer, checks the signature against p.Issuer's public key and returns
// the DER CertificateList. See the package documentation for how memory is
// used and why a successful Sign spends the Builder.
func (b *Builder) Sign(rand io.Reader, p Params) ([]byte, error) {
	if b.signed {
		return nil, ErrSigned
	}
	sch, pub, err := checkParams(p)
	if err != nil {
		return nil, err
	}
	this, err := toStamp("thisUpdate", p.ThisUpdate)
	if err != nil {
		return nil, err
	}
	next, err := toStamp("nextUpdate", p.NextUpdate)
	if err != nil {
		return nil, err
	}

	// Everything but the entries is small: build it in front and back.
	entries := b.buf[headroom:]
	var prefix []byte
	prefix = append(prefix, version2...)
	prefix = append(prefix, sch.algID...)
	prefix = append(prefix, p.Issuer.RawSubject...)
	prefix = this.appendTime(prefix)
	prefix = next.appendTime(prefix)
	if len(entries) > 0 {
		// RFC 5280 section 5.1.2.6: absent, not empty, when nothing is revoked.
		prefix = appendHeader(prefix, tagSequence, len(entries))
	}
	suffix := crlExtensions(p.Issuer.SubjectKeyId, p.Number)
	tbsLen := len(prefix) + len(entries) + len(suffix)
	front := appendHeader(make([]byte, 0, 10+len(prefix)), tagSequence, tbsLen)
	front = append(front, prefix...)
	tail := len(suffix) + len(sch.algID) + 1 + 9 + 1 + sch.maxSig(pub)
	total := maxOuterHeader + len(front) + len(entries) + tail

	var buf []byte
	start := headroom - len(front) // where the TBSCertList begins in buf
	if start >= maxOuterHeader && cap(b.buf)-len(b.buf) >= tail && cap(b.buf) <= 2*total {
		buf = b.buf
		copy(buf[start:], front)
		buf = append(buf, suffix...)
	} else {
		start = maxOuterHeader
		buf = make([]byte, start, total)
		buf = append(buf, front...)
		buf = append(buf, entries...)
		buf = append(buf, suffix...)
	}
	tbs := buf[start:]

	msg := tbs
	if sch.hash != 0 {
		h := sch.hash.New()
		h.Write(tbs)
		msg = h.Sum(nil)
	}
	sig, err := p.Signer.Sign(rand, msg, sch.hash)
	if err != nil {
		return nil, fmt.Errorf("crl: sign: %w", err)
	}
	// A broken signer or KMS must not publish a CRL nobody can verify.
	// With a digest this costs one verification, not another hash pass.
	if !sch.verify(pub, msg, sig) {
		return nil, ErrBadSignature
	}

	buf = append(buf, sch.algID...)
	buf = appendHeader(buf, tagBitString, 1+len(sig))
	buf = append(buf, 0) // no unused bits
	buf = append(buf, sig...)
	outer := appendHeader(make([]byte, 0, maxOuterHeader), tagSequence, len(buf)-start)
	start -= len(outer)
	copy(buf[start:], outer)

	b.buf, b.signed = nil, true
	return buf[start:len(buf):len(buf)], nil
}

// checkParams rejects parameters that would make a CRL nobody should trust,
// and returns the signature scheme and issuer public key.
func checkParams(p Params) (scheme, crypto.PublicKey, error) {
	switch {
	case p.Issuer == nil:
		return scheme{}, nil, fmt.Errorf("%w: no issuer certificate", ErrInvalidParams)
	case len(p.Issuer.RawSubject) == 0:
		return scheme{}, nil, fmt.Errorf("%w: issuer certificate has no raw subject (not parsed from DER?)", ErrInvalidParams)
	case len(p.Issuer.SubjectKeyId) == 0:
		return scheme{}, nil, fmt.Errorf("%w: issuer certificate has no subject key identifier", ErrInvalidParams)
	case p.Issuer.KeyUsage != 0 && p.Issuer.KeyUsage&x509.KeyUsageCRLSign == 0:
		return scheme{}, nil, fmt.Errorf("%w: issuer key usage lacks cRLSign", ErrInvalidParams)
	case p.Signer == nil:
		return scheme{}, nil, fmt.Errorf("%w: no signer", ErrInvalidParams)
	case p.Number == nil:
		return scheme{}, nil, fmt.Errorf("%w: no CRL number", ErrInvalidParams)
	case p.Number.Sign() < 0:
		return scheme{}, nil, fmt.Errorf("%w: CRL number %s is negative", ErrInvalidParams, p.Number)
	case len(p.Number.Bytes()) > maxSerialOctets:
		return scheme{}, nil, fmt.Errorf("%w: CRL number is %d octets, at most %d allowed", ErrInvalidParams, len(p.Number.Bytes()), maxSerialOctets)
	case p.ThisUpdate.IsZero():
		return scheme{}, nil, fmt.Errorf("%w: thisUpdate is not set", ErrInvalidTime)
	}
	this, next := p.ThisUpdate.Truncate(time.Second), p.NextUpdate.Truncate(time.Second)
	if !next.After(this) {
		return scheme{}, nil, fmt.Errorf("%w: nextUpdate %s is not after thisUpdate %s",
			ErrInvalidTime, next.UTC().Format(time.RFC3339), this.UTC().Format(time.RFC3339))
	}

	pub := p.Issuer.PublicKey
	alg := pki.SignatureAlgorithmFor(pub)
	sch, ok := schemes[alg]
	if !ok {
		return scheme{}, nil, fmt.Errorf("%w: no CRL signature algorithm for issuer key %T", ErrInvalidParams, pub)
	}
	k, ok := p.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(pub) {
		return scheme{}, nil, ErrKeyMismatch
	}
	return sch, pub, nil
}

// crlExtensions encodes crlExtensions [0] with the authority key identifier
// (RFC 5280 section 5.2.1) and CRL number (section 5.2.3), both non-critical.
func crlExtensions(keyID []byte, number *big.Int) []byte {
	aki := appendHeader(nil, tagKeyIdentifier, len(keyID))
	aki = append(aki, keyID...)
	aki = wrap(tagSequence, aki)

	num := number.Bytes()
	if len(num) == 0 || num[0]&0x80 != 0 {
		num = append([]byte{0}, num...)
	}
	num = wrap(tagInteger, num)

	exts := slices.Concat(
		wrap(tagSequence, slices.Concat(oidAuthorityKeyID, wrap(tagOctetString, aki))),
		wrap(tagSequence, slices.Concat(oidCRLNumber, wrap(tagOctetString, num))),
	)
	return wrap(tagContext0, wrap(tagSequence, exts))
}

func wrap(tag byte, content []byte) []byte {
	return append(appendHeader(make([]byte, 0, 10+len(content)), tag, len(content)), content...)
}

// appendHeader appends a DER identifier octet and definite length.
func appendHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	if n < 0x80 {
		return append(dst, byte(n))
	}
	octets := 0
	for v := n; v > 0; v >>= 8 {
		octets++
	}
	dst = append(dst, 0x80|byte(octets))
	for i := octets - 1; i >= 0; i-- {
		dst = append(dst, byte(n>>(8*i)))
	}
	return dst
}

// stamp is a time broken into the fields DER times are written from,
// computed once per time value: time.Time's accessors each redo the
// calendar arithmetic, which showed at a million entries.
type stamp struct {
	year, month, day, hour, minute, second int
}

// toStamp converts t to UTC fields, dropping fractions of a second, and
// rejects years GeneralizedTime cannot hold.
func toStamp(what string, t time.Time) (stamp, error) {
	unix := t.Unix()
	days, sec := unix/86400, unix%86400
	if sec < 0 {
		days, sec = days-1, sec+86400
	}
	// Civil date from days since 1970-01-01, proleptic Gregorian
	// (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if mp >= 10 {
		month = mp - 9
	}
	year := yoe + era*400
	if month <= 2 {
		year++
	}
	if year < 0 || year > 9999 {
		return stamp{}, fmt.Errorf("%w: %s year %d is outside 0000-9999", ErrInvalidTime, what, year)
	}
	return stamp{int(year), int(month), int(day), int(sec / 3600), int(sec / 60 % 60), int(sec % 60)}, nil
}

// utc is RFC 5280 section 5.1.2.4: UTCTime through 2049, GeneralizedTime
// from 2050 (and, to stay representable, before 1950).
func (s stamp) utc() bool { return s.year >= 1950 && s.year < 2050 }

// encodedLen is the length of s as a Time CHOICE.
func (s stamp) encodedLen() int {
	if s.utc() {
		return 2 + 13
	}
	return 2 + 15
}

// appendTime appends s as a Time CHOICE.
func (s stamp) appendTime(dst []byte) []byte {
	if s.utc() {
		return s.appendDigits(append(dst, tagUTCTime, 13), false)
	}
	return s.appendDigits(append(dst, tagGeneralizedTime, 15), true)
}

// appendDigits appends YYMMDDHHMMSSZ, or YYYYMMDDHHMMSSZ when full.
func (s stamp) appendDigits(dst []byte, full bool) []byte {
	if full {
		dst = append2(dst, s.year/100)
	}
	return append(append2(append2(append2(append2(append2(append2(dst,
		s.year%100), s.month), s.day), s.hour), s.minute), s.second), 'Z')
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

// Compile-time check that the entry bound the encoder relies on holds.
var _ = [1]struct{}{}[maxEntryLen/128]
