package scep

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"github.com/smallstep/pkcs7"
	"github.com/smallstep/scep/x509util"
)

// The SCEP message attributes (RFC 8894 §3.2.1), Verisign's arc.
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

// Message types (RFC 8894 §3.2.1.2).
const (
	msgCertRep    = "3"
	msgRenewalReq = "17"
	msgPKCSReq    = "19"
	msgCertPoll   = "20" // GetCertInitial
	msgGetCert    = "21"
	msgGetCRL     = "22"
)

// PKI statuses and failure reasons (RFC 8894 §3.2.1.3, §3.2.1.4).
const (
	statusSuccess = "0"
	statusFailure = "2"
	statusPending = "3"

	FailBadAlg          = "0"
	FailBadMessageCheck = "1"
	FailBadRequest      = "2"
	FailBadTime         = "3"
	FailBadCertID       = "4"
)

// Limits on what a device may send.
const (
	// MaxMessage bounds a PKIOperation body (a CSR with a 16384-bit RSA
	// key and its signer certificate fit with room to spare).
	MaxMessage = 64 << 10
	// maxTransactionID and maxNonce bound the two attributes echoed back.
	maxTransactionID = 128
	maxNonce         = 64
)

// message is a device's PKIMessage: a SignedData whose signature has
// been verified with the signer certificate it carries.
type message struct {
	typ         string
	txID        string
	senderNonce []byte
	signer      *x509.Certificate
	p7          *pkcs7.PKCS7
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseMessage reads and verifies a PKIMessage (RFC 8894 §3.2). Every
// failure wraps ErrMalformed: the message cannot be answered with a
// CertRep, since its transaction and nonce are unknown or unproven.
func parseMessage(der []byte) (*message, error) {
	if len(der) == 0 {
		return nil, malformed("empty message: POST the DER PKIMessage as application/x-pki-message")
	}
	if len(der) > MaxMessage {
		return nil, malformed("message of %d bytes; at most %d", len(der), MaxMessage)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, malformed("not a PKCS#7 SignedData: %v", err)
	}
	if len(p7.Signers) != 1 {
		return nil, malformed("%d signers; a PKIMessage has exactly one", len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, malformed("the signer's certificate is not in the message")
	}
	if err := p7.Verify(); err != nil {
		return nil, malformed("signature does not verify: %v", err)
	}
	m := &message{p7: p7, signer: signer}
	if err := p7.UnmarshalSignedAttribute(oidMessageType, &m.typ); err != nil {
		return nil, malformed("messageType: %v", err)
	}
	if err := p7.UnmarshalSignedAttribute(oidTransactionID, &m.txID); err != nil {
		return nil, malformed("transactionID: %v", err)
	}
	if m.txID == "" || len(m.txID) > maxTransactionID || !printable(m.txID) {
		return nil, malformed("transactionID: want 1 to %d printable characters", maxTransactionID)
	}
	if err := p7.UnmarshalSignedAttribute(oidSenderNonce, &m.senderNonce); err != nil {
		return nil, malformed("senderNonce: %v", err)
	}
	if len(m.senderNonce) == 0 || len(m.senderNonce) > maxNonce {
		return nil, malformed("senderNonce: want 1 to %d bytes", maxNonce)
	}
	return m, nil
}

// An algorithm a device protects a PKIMessage with, and whether it is
// legacy (broken or weakened: refused unless the provisioner allows
// legacy crypto).
type algorithm struct {
	oid    asn1.ObjectIdentifier
	name   string
	legacy bool
	// unsupported: the PKCS#7 library cannot process it, so it is
	// refused whether or not legacy crypto is allowed.
	unsupported bool
}

// envelopeCiphers are the pkcsPKIEnvelope content encryptions this
// server knows (RFC 8894 §3.5.2 names AES and DES3; single DES is what
// old clients send unasked). AES-192 is AES, but the PKCS#7 library
// cannot decrypt it, nor any cipher not listed: those are refused
// (badAlg) whether or not legacy crypto is allowed, saying so, rather
// than failing to decrypt (badRequest).
var envelopeCiphers = []algorithm{
	{oid: pkcs7.OIDEncryptionAlgorithmAES128CBC, name: "AES-128-CBC"},
	{oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}, name: "AES-192-CBC", unsupported: true},
	{oid: pkcs7.OIDEncryptionAlgorithmAES256CBC, name: "AES-256-CBC"},
	{oid: pkcs7.OIDEncryptionAlgorithmAES128GCM, name: "AES-128-GCM"},
	{oid: pkcs7.OIDEncryptionAlgorithmAES256GCM, name: "AES-256-GCM"},
	{oid: pkcs7.OIDEncryptionAlgorithmDESEDE3CBC, name: "DES-EDE3-CBC (3DES)", legacy: true},
	{oid: pkcs7.OIDEncryptionAlgorithmDESCBC, name: "DES-CBC", legacy: true},
}

// signerDigests are the signer digest algorithms this server knows. The
// library verifies an RSA signature with the hash the digestAlgorithm
// names (rsaEncryption there means SHA-1). MD5, and sha1WithRSA as a
// digest, are not listed: the library cannot verify them, so such a
// message never gets here (parseMessage refuses it, HTTP 400).
var signerDigests = []algorithm{
	{oid: pkcs7.OIDDigestAlgorithmSHA256, name: "SHA-256"},
	{oid: pkcs7.OIDDigestAlgorithmSHA384, name: "SHA-384"},
	{oid: pkcs7.OIDDigestAlgorithmSHA512, name: "SHA-512"},
	{oid: pkcs7.OIDDigestAlgorithmSHA1, name: "SHA-1", legacy: true},
	{oid: pkcs7.OIDEncryptionAlgorithmRSA, name: "SHA-1", legacy: true},
}

// signerSignatures are the signer signature algorithms
// (digestEncryptionAlgorithm) this server knows. The library verifies an
// ECDSA signature with the hash this field names (ecdsa-with-SHA1 means
// SHA-1 whatever digestAlgorithm says), so it is checked too.
var signerSignatures = []algorithm{
	{oid: pkcs7.OIDEncryptionAlgorithmRSA, name: "RSA"},
	{oid: pkcs7.OIDEncryptionAlgorithmRSASHA256, name: "RSA with SHA-256"},
	{oid: pkcs7.OIDEncryptionAlgorithmRSASHA384, name: "RSA with SHA-384"},
	{oid: pkcs7.OIDEncryptionAlgorithmRSASHA512, name: "RSA with SHA-512"},
	{oid: pkcs7.OIDDigestAlgorithmECDSASHA256, name: "ECDSA with SHA-256"},
	{oid: pkcs7.OIDDigestAlgorithmECDSASHA384, name: "ECDSA with SHA-384"},
	{oid: pkcs7.OIDDigestAlgorithmECDSASHA512, name: "ECDSA with SHA-512"},
	{oid: pkcs7.OIDEncryptionAlgorithmRSASHA1, name: "RSA with SHA-1", legacy: true},
	{oid: pkcs7.OIDDigestAlgorithmECDSASHA1, name: "ECDSA with SHA-1", legacy: true},
	{oid: pkcs7.OIDEncryptionAlgorithmRSAMD5, name: "RSA with MD5", legacy: true},
}

// legacyCSRSignatures are the CSR signature algorithms refused without
// legacy crypto. MD5WithRSA never gets here: crypto/x509 refuses to
// check an MD5 signature, so open refuses the CSR first.
var legacyCSRSignatures = []x509.SignatureAlgorithm{x509.SHA1WithRSA, x509.ECDSAWithSHA1}

// legacyCSR says whether csr is signed with a legacy algorithm.
func legacyCSR(csr *x509.CertificateRequest) *weakness {
	if slices.Contains(legacyCSRSignatures, csr.SignatureAlgorithm) {
		return &weakness{part: "CSR signature", name: csr.SignatureAlgorithm.String()}
	}
	return nil
}

// weakness is why a message's protection is refused without legacy
// crypto: which part (the envelope's encryption or the signer's digest)
// and the algorithm's name; name is "unknown" (the OID in detail) for
// algorithms not in the tables, so that names stay a fixed set.
type weakness struct {
	part, name, detail string
	// notDER marks an envelope that is not DER: not a legacy algorithm
	// but an encoding this server does not check (see refusal).
	notDER bool
	// unsupported marks an algorithm this server cannot process, refused
	// whether or not legacy crypto is allowed.
	unsupported bool
}

// refusal is the failInfo and reason a provisioner without legacy crypto
// refuses w with.
func (w *weakness) refusal(prov string) (info, reason string) {
	switch {
	case w.notDER:
		return FailBadMessageCheck, fmt.Sprintf("the envelope is not DER (RFC 8894 asks for DER): %s; --allow-legacy-crypto on provisioner %s admits it unchecked", w.detail, prov)
	case w.unsupported:
		return FailBadAlg, fmt.Sprintf("%s cannot be decrypted by this server; use AES-128 or AES-256 (CBC or GCM)", w)
	}
	return FailBadAlg, fmt.Sprintf("%s is refused by provisioner %s; use AES and SHA-256, or enable --allow-legacy-crypto on provisioner %s if its devices cannot", w, prov, prov)
}

func (w *weakness) String() string {
	if w.detail != "" {
		return w.part + " " + w.name + " (" + w.detail + ")"
	}
	return w.part + " " + w.name
}

// lookupAlgorithm finds oid in table and says whether it is a weakness;
// one not in the table is unknown, and unsupported when unknownFails.
func lookupAlgorithm(table []algorithm, part string, oid asn1.ObjectIdentifier, unknownFails bool) *weakness {
	for _, a := range table {
		if a.oid.Equal(oid) {
			if a.legacy || a.unsupported {
				return &weakness{part: part, name: a.name, unsupported: a.unsupported}
			}
			return nil
		}
	}
	return &weakness{part: part, name: "unknown", detail: "OID " + peerOID(oid), unsupported: unknownFails}
}

// peerOID is oid as text, cut to maxOIDDetail characters: the peer
// chooses it, and what is counted and logged stays short.
func peerOID(oid asn1.ObjectIdentifier) string {
	s := oid.String()
	if len(s) > maxOIDDetail {
		s = s[:maxOIDDetail] + "..."
	}
	return s
}

// maxOIDDetail bounds the characters of an unknown OID named in a
// refusal.
const maxOIDDetail = 40

// legacyAlgorithm says what in m is protected with a legacy or unknown
// algorithm: the signer's digest, or the pkcsPKIEnvelope's content
// encryption, which it reads from the DER without decrypting. An
// envelope that is not DER is a weakness too, marked notDER (fail
// closed: what cannot be checked is not admitted). An unsupported
// weakness comes first, since it is refused even where legacy crypto is
// allowed; otherwise the signer's digest, its signature, the envelope.
// nil means AES and SHA-2.
func (m *message) legacyAlgorithm() *weakness {
	ws := []*weakness{
		lookupAlgorithm(signerDigests, "signer digest", m.p7.Signers[0].DigestAlgorithm.Algorithm, false),
		lookupAlgorithm(signerSignatures, "signer signature", m.p7.Signers[0].DigestEncryptionAlgorithm.Algorithm, false),
	}
	if alg, err := envelopeAlgorithm(m.p7.Content); err != nil {
		ws = append(ws, &weakness{part: "envelope", name: "not DER", detail: err.Error(), notDER: true})
	} else {
		// The library decrypts only the ciphers listed.
		ws = append(ws, lookupAlgorithm(envelopeCiphers, "envelope encryption", alg, true))
	}
	if i := slices.IndexFunc(ws, func(w *weakness) bool { return w != nil && w.unsupported }); i >= 0 {
		return ws[i]
	}
	if i := slices.IndexFunc(ws, func(w *weakness) bool { return w != nil }); i >= 0 {
		return ws[i]
	}
	return nil
}

// The ASN.1 of a pkcsPKIEnvelope, as far as its content encryption
// (RFC 5652 §6.1); the rest is left unparsed.
type envelopeContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type envelopedDataHead struct {
	Version              int
	RecipientInfos       asn1.RawValue
	EncryptedContentInfo struct {
		ContentType                asn1.ObjectIdentifier
		ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
		EncryptedContent           asn1.RawValue `asn1:"optional,tag:0"`
	}
	UnprotectedAttrs asn1.RawValue `asn1:"optional,tag:1"`
}

// envelopeAlgorithm reads the content encryption algorithm of the
// EnvelopedData der (DER, as RFC 8894 §3 asks; this is untrusted input,
// read by encoding/asn1 with its bounds checks).
func envelopeAlgorithm(der []byte) (asn1.ObjectIdentifier, error) {
	var ci envelopeContentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("pkcsPKIEnvelope is not DER ContentInfo: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("pkcsPKIEnvelope has trailing data")
	}
	if !ci.ContentType.Equal(pkcs7.OIDEnvelopedData) {
		return nil, fmt.Errorf("pkcsPKIEnvelope has content type %s, not envelopedData", peerOID(ci.ContentType))
	}
	var ed envelopedDataHead
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return nil, fmt.Errorf("pkcsPKIEnvelope is not DER EnvelopedData: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("pkcsPKIEnvelope has trailing data")
	}
	return ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm, nil
}

// csrRequest is the content of a PKCSReq or RenewalReq.
type csrRequest struct {
	csr       *x509.CertificateRequest
	challenge string
}

// open decrypts the message's pkcsPKIEnvelope with the RA key and reads
// the CSR in it. A failure here is answered with a CertRep (badMessageCheck).
func (m *message) open(r *ra) (*csrRequest, error) {
	env, err := pkcs7.Parse(m.p7.Content)
	if err != nil {
		return nil, fmt.Errorf("pkcsPKIEnvelope is not PKCS#7: %w", err)
	}
	data, err := env.Decrypt(r.cert, r.key)
	if err != nil {
		return nil, fmt.Errorf("pkcsPKIEnvelope does not decrypt with the RA key (encrypt to the RA certificate from GetCACert): %w", err)
	}
	csr, err := x509.ParseCertificateRequest(data)
	if err != nil {
		return nil, fmt.Errorf("the envelope holds no PKCS#10 CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the CSR's signature does not verify: %w", err)
	}
	cp, err := x509util.ParseChallengePassword(data)
	if err != nil {
		return nil, fmt.Errorf("challengePassword: %w", err)
	}
	return &csrRequest{csr: csr, challenge: cp}, nil
}

// certRep builds the CertRep answering m (RFC 8894 §3.3.2): signed by the
// RA, with a fresh senderNonce and m's as recipientNonce; on success the
// issued certificate goes in a degenerate PKCS#7 encrypted to the
// certificate that signed m.
func (r *ra) certRep(m *message, nonce []byte, status, failInfo string, issued *x509.Certificate) ([]byte, error) {
	attrs := []pkcs7.Attribute{
		{Type: oidTransactionID, Value: m.txID},
		{Type: oidMessageType, Value: msgCertRep},
		{Type: oidPKIStatus, Value: status},
		{Type: oidSenderNonce, Value: nonce},
		{Type: oidRecipientNonce, Value: m.senderNonce},
	}
	if status == statusFailure {
		attrs = append(attrs, pkcs7.Attribute{Type: oidFailInfo, Value: failInfo})
	}
	var content []byte
	if status == statusSuccess {
		deg, err := pkcs7.DegenerateCertificate(issued.Raw)
		if err != nil {
			return nil, fmt.Errorf("scep: degenerate PKCS#7: %w", err)
		}
		if content, err = pkcs7.Encrypt(deg, []*x509.Certificate{m.signer}); err != nil {
			return nil, fmt.Errorf("scep: encrypt to the requester: %w", err)
		}
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("scep: CertRep: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	signer, ok := r.key.(crypto.Signer)
	if !ok {
		return nil, errors.New("scep: the RA key cannot sign")
	}
	if err := sd.AddSigner(r.cert, signer, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, fmt.Errorf("scep: sign CertRep: %w", err)
	}
	return sd.Finish()
}

// caCerts is the GetCACert answer: the RA certificate then the CA chain,
// as a degenerate PKCS#7 (RFC 8894 §4.2.1.2).
func (r *ra) caCerts() ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(r.cert.Raw)
	for _, c := range r.chain {
		buf.Write(c.Raw)
	}
	return pkcs7.DegenerateCertificate(buf.Bytes())
}

// The CertRep's envelope is encrypted with AES-256-CBC rather than the
// library's default, DES-CBC; every SCEP client that announces or
// accepts AES (RFC 8894 §3.5.2 makes it mandatory) reads it. pkcs7
// (v0.2.3) keeps the choice in a package variable and offers no per-call
// option (Encrypt takes only the content and recipients), so it is set
// once, before main runs, and never again; nothing else in the server
// encrypts with pkcs7.
func init() { pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC }
