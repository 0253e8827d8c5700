package app

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	smscep "github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/certwright/certwright/internal/web/apitypes"
)

// The devices of the other SCEP tests use the smallstep/scep client,
// which signs with pkcs7's default digest, SHA-1 (its envelope is
// AES-256-CBC: the server package sets pkcs7's package variable). They
// sign with SHA-256, as a device that follows GetCACaps does; the tests
// of legacy crypto build their messages with explicit algorithms.
func init() {
	if err := pkcs7.SetDefaultDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256); err != nil {
		panic(err)
	}
}

// ASN.1 of an EnvelopedData (RFC 5652 §6), built here because pkcs7.Encrypt
// takes its cipher from a package variable the server sets.
type (
	tIssuerAndSerial struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	tRecipientInfo struct {
		Version      int
		Recipient    tIssuerAndSerial
		KeyAlgorithm pkix.AlgorithmIdentifier
		EncryptedKey []byte
	}
	tEncryptedContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Content     asn1.RawValue
	}
	tEnvelopedData struct {
		Version    int
		Recipients []tRecipientInfo `asn1:"set"`
		Content    tEncryptedContentInfo
	}
	tContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
)

// tEnvelope encrypts content to ra with cipherOID: DES-CBC, DES-EDE3-CBC,
// AES-192-CBC or AES-256-CBC.
func tEnvelope(t *testing.T, content []byte, ra *x509.Certificate, cipherOID asn1.ObjectIdentifier) []byte {
	t.Helper()
	var key []byte
	var newBlock func([]byte) (cipher.Block, error)
	switch {
	case cipherOID.Equal(pkcs7.OIDEncryptionAlgorithmDESCBC):
		key, newBlock = make([]byte, 8), des.NewCipher
	case cipherOID.Equal(pkcs7.OIDEncryptionAlgorithmDESEDE3CBC):
		key, newBlock = make([]byte, 24), des.NewTripleDESCipher
	case cipherOID.Equal(pkcs7.OIDEncryptionAlgorithmAES256CBC):
		key, newBlock = make([]byte, 32), aes.NewCipher
	case cipherOID.Equal(tAES192):
		key, newBlock = make([]byte, 24), aes.NewCipher
	default:
		t.Fatalf("tEnvelope: cipher %s", cipherOID)
	}
	rand.Read(key)
	block, err := newBlock(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, block.BlockSize())
	rand.Read(iv)
	pad := block.BlockSize() - len(content)%block.BlockSize()
	plain := append(append([]byte{}, content...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	sealed := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(sealed, plain)
	encKey, err := rsa.EncryptPKCS1v15(rand.Reader, ra.PublicKey.(*rsa.PublicKey), key)
	if err != nil {
		t.Fatal(err)
	}
	ivDER, _ := asn1.Marshal(iv)
	ed, err := asn1.Marshal(tEnvelopedData{
		Recipients: []tRecipientInfo{{
			Recipient:    tIssuerAndSerial{Issuer: asn1.RawValue{FullBytes: ra.RawIssuer}, Serial: ra.SerialNumber},
			KeyAlgorithm: pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDEncryptionAlgorithmRSA, Parameters: asn1.NullRawValue},
			EncryptedKey: encKey,
		}},
		Content: tEncryptedContentInfo{
			ContentType: pkcs7.OIDData,
			Algorithm:   pkix.AlgorithmIdentifier{Algorithm: cipherOID, Parameters: asn1.RawValue{FullBytes: ivDER}},
			Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: sealed},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(tContentInfo{ContentType: pkcs7.OIDEnvelopedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: ed}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// legacyMessage is a PKIMessage of type typ (PKCSReq "19", RenewalReq
// "17" or GetCertInitial "20") carrying content encrypted with cipherOID
// and signed with the device's key and signer (nil: its self-signed
// certificate) with digestOID; a PKCSReq or RenewalReq becomes the
// device's last transaction.
func (d *tSCEPDevice) legacyMessage(typ string, content []byte, cipherOID, digestOID asn1.ObjectIdentifier, signer *x509.Certificate) []byte {
	d.t.Helper()
	return d.signedMessage(typ, tEnvelope(d.t, content, d.ra, cipherOID), digestOID, signer)
}

// signedMessage is a PKIMessage of type typ around envelope, as
// legacyMessage.
func (d *tSCEPDevice) signedMessage(typ string, envelope []byte, digestOID asn1.ObjectIdentifier, signer *x509.Certificate) []byte {
	d.t.Helper()
	sd, err := pkcs7.NewSignedData(envelope)
	if err != nil {
		d.t.Fatal(err)
	}
	sd.SetDigestAlgorithm(digestOID)
	if signer == nil {
		signer = d.self
	}
	if typ != "20" {
		spki, _ := x509.MarshalPKIXPublicKey(&d.key.PublicKey)
		sum := sha256.Sum256(spki)
		d.txID = smscep.TransactionID(hex.EncodeToString(sum[:]))
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	oid := func(n int) []int { return []int{2, 16, 840, 1, 113733, 1, 9, n} }
	err = sd.AddSigner(signer, d.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oid(7), Value: string(d.txID)}, {Type: oid(2), Value: typ}, {Type: oid(5), Value: nonce},
	}})
	if err != nil {
		d.t.Fatal(err)
	}
	raw, err := sd.Finish()
	if err != nil {
		d.t.Fatal(err)
	}
	return raw
}

// legacyRequest sends a PKCSReq for cn with challenge (or, with signer
// set, a RenewalReq signed by it), encrypted with cipherOID and signed
// with digestOID, and returns the CertRep.
func (d *tSCEPDevice) legacyRequest(cn, challenge string, cipherOID, digestOID asn1.ObjectIdentifier, signer ...*x509.Certificate) *smscep.PKIMessage {
	d.t.Helper()
	csr, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, ChallengePassword: challenge,
	}, d.key)
	if err != nil {
		d.t.Fatal(err)
	}
	typ, by := "19", d.self
	if len(signer) > 0 {
		typ, by = "17", signer[0]
	}
	return d.send(d.legacyMessage(typ, csr, cipherOID, digestOID, by), by, d.key)
}

func tWantBadAlg(t *testing.T, rep *smscep.PKIMessage, what string) {
	t.Helper()
	if rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadAlg {
		t.Errorf("%s: status %s failInfo %q, want FAILURE badAlg", what, rep.PKIStatus, string(rep.FailInfo))
	}
}

var (
	tDES    = pkcs7.OIDEncryptionAlgorithmDESCBC
	t3DES   = pkcs7.OIDEncryptionAlgorithmDESEDE3CBC
	tAES    = pkcs7.OIDEncryptionAlgorithmAES256CBC
	tAES192 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	tSHA1   = pkcs7.OIDDigestAlgorithmSHA1
	tSHA256 = pkcs7.OIDDigestAlgorithmSHA256
)

// TestSCEPLegacyCrypto: a provisioner refuses (badAlg) a PKCSReq or
// GetCertInitial encrypted with DES or 3DES or signed with SHA-1, before
// its challenge is consumed, storing nothing, unless legacy crypto is
// allowed on it, which also makes GetCACaps announce DES3 and SHA-1; on
// SQLite and PostgreSQL (the switch is stored).
func TestSCEPLegacyCrypto(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			start := time.Now().Add(-time.Second)
			var prov apitypes.SCEPProvisioner
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, &prov)
			if prov.AllowLegacyCrypto {
				t.Fatal("a new provisioner allows legacy crypto by default")
			}
			if _, caps := in.scepGet("mdm", "GetCACaps"); strings.Contains(string(caps), "DES3") || strings.Contains(string(caps), "SHA-1\n") {
				t.Errorf("GetCACaps without legacy crypto: %q", caps)
			}
			before := in.certCount()

			// Refused whatever the challenge, which stays unused.
			ch := in.scepChallenge("mdm", "")
			for _, c := range []struct {
				name           string
				cipher, digest asn1.ObjectIdentifier
			}{
				{"DES envelope", tDES, tSHA256},
				{"3DES envelope", t3DES, tSHA256},
				{"SHA-1 digest", tAES, tSHA1},
				{"DES and SHA-1 (Debian's scepclient)", tDES, tSHA1},
				{"AES-192 envelope, which the server cannot decrypt", tAES192, tSHA256},
			} {
				tWantBadAlg(t, tNewSCEPDevice(t, in, "mdm").legacyRequest("laptop-1", ch, c.cipher, c.digest), c.name)
			}
			// GetCertInitial too (before the transaction is looked up).
			dev := tNewSCEPDevice(t, in, "mdm")
			dev.txID = "some-transaction"
			ias, _ := asn1Marshal(dev.ra.RawIssuer, dev.self.RawSubject)
			tWantBadAlg(t, dev.send(dev.legacyMessage("20", ias, tAES, tSHA1, nil), dev.self, dev.key), "GetCertInitial signed with SHA-1")
			if n := in.certCount(); n != before {
				t.Errorf("refused requests stored %d certificates", n-before)
			}
			if acts := in.auditActions(start); acts["scep.challenge.use/success"] != 0 || acts["scep.challenge.reuse/denied"] != 0 {
				t.Errorf("a refused request touched the challenge: %v", acts)
			}
			// The same challenge with AES and SHA-256 enrols.
			dev = tNewSCEPDevice(t, in, "mdm")
			enrolled := dev.legacyRequest("laptop-1", ch, tAES, tSHA256)
			if enrolled.PKIStatus != smscep.SUCCESS {
				t.Fatalf("AES and SHA-256 after the refusals: %s %s: %s", enrolled.PKIStatus, enrolled.FailInfo, in.lastSCEPRefusal())
			}
			// A RenewalReq too; the certificate still renews once with AES and SHA-256.
			tWantBadAlg(t, dev.legacyRequest("laptop-1", "", tAES, tSHA1, enrolled.Certificate), "RenewalReq signed with SHA-1")
			tWantBadAlg(t, dev.legacyRequest("laptop-1", "", tDES, tSHA256, enrolled.Certificate), "RenewalReq in a DES envelope")
			if rep := dev.legacyRequest("laptop-1", "", tAES, tSHA256, enrolled.Certificate); rep.PKIStatus != smscep.SUCCESS {
				t.Fatalf("RenewalReq with AES and SHA-256 after the refusals: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
			}

			// Allowed on the provisioner: today's behaviour, single DES included.
			legacy := true
			in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/mdm", apitypes.UpdateSCEPProvisionerRequest{AllowLegacyCrypto: &legacy}, &prov)
			if !prov.AllowLegacyCrypto {
				t.Fatalf("update answered %+v, want allow_legacy_crypto", prov)
			}
			in.must(http.StatusOK, "GET", "/api/v1/scep/provisioners/mdm", nil, &prov)
			if !prov.AllowLegacyCrypto {
				t.Fatal("allow_legacy_crypto not stored")
			}
			if _, caps := in.scepGet("mdm", "GetCACaps"); !strings.Contains(string(caps), "DES3\n") || !strings.Contains(string(caps), "SHA-1\n") ||
				!strings.Contains(string(caps), "AES\n") {
				t.Errorf("GetCACaps with legacy crypto: %q, want AES, DES3 and SHA-1 among them", caps)
			}
			// What the server cannot decrypt stays refused as badAlg,
			// whatever the other algorithms (not badRequest, as a
			// failed decryption is), the challenge unused.
			aesCh := in.scepChallenge("mdm", "")
			tWantBadAlg(t, tNewSCEPDevice(t, in, "mdm").legacyRequest("laptop-5", aesCh, tAES192, tSHA1), "AES-192 envelope, legacy allowed")
			if rep := tNewSCEPDevice(t, in, "mdm").legacyRequest("laptop-5", aesCh, tAES, tSHA256); rep.PKIStatus != smscep.SUCCESS {
				t.Errorf("the challenge after the AES-192 refusal: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
			}
			for i, c := range []struct{ cipher, digest asn1.ObjectIdentifier }{{tDES, tSHA1}, {t3DES, tSHA1}, {tDES, tSHA256}} {
				cn := "old-" + string(rune('a'+i))
				rep := tNewSCEPDevice(t, in, "mdm").legacyRequest(cn, in.scepChallenge("mdm", ""), c.cipher, c.digest)
				if rep.PKIStatus != smscep.SUCCESS || rep.Certificate.Subject.CommonName != cn {
					t.Errorf("%s with %s and %s, legacy allowed: %s %s: %s", cn, c.cipher, c.digest, rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
				}
			}

			// Switched off again: refused again; the switch is audited.
			legacy = false
			in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/mdm", apitypes.UpdateSCEPProvisionerRequest{AllowLegacyCrypto: &legacy}, nil)
			tWantBadAlg(t, tNewSCEPDevice(t, in, "mdm").legacyRequest("old-d", in.scepChallenge("mdm", ""), tDES, tSHA1), "DES after switching off")
			if acts := in.auditActions(start); acts["scep.provisioner.update/success"] != 2 {
				t.Errorf("audit: %v, want 2 scep.provisioner.update", acts)
			}

			// Created with the switch on.
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "old", CA: "issuing", Profile: "client_auth", Challenge: "dynamic", AllowLegacyCrypto: true}, &prov)
			if !prov.AllowLegacyCrypto {
				t.Fatalf("created %+v, want allow_legacy_crypto", prov)
			}
			if rep := tNewSCEPDevice(t, in, "old").legacyRequest("old-e", in.scepChallenge("old", ""), tDES, tSHA1); rep.PKIStatus != smscep.SUCCESS {
				t.Errorf("DES and SHA-1 on a provisioner created with legacy crypto: %s %s", rep.PKIStatus, rep.FailInfo)
			}
		})
	}
}

// tIndefinite re-encodes the outer SEQUENCE of der with an indefinite
// length (BER, not DER).
func tIndefinite(t *testing.T, der []byte) []byte {
	t.Helper()
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{0x30, 0x80}, raw.Bytes...), 0, 0)
}

// tStrictSCEP is a server with dynamic provisioner mdm, legacy crypto
// off.
func tStrictSCEP(t *testing.T) *tInstance {
	t.Helper()
	in := tNewServer(t, "")
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
		Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, nil)
	return in
}

// allowLegacy switches legacy crypto on for provisioner name.
func (in *tInstance) allowLegacy(name string) {
	in.t.Helper()
	on := true
	in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/"+name, apitypes.UpdateSCEPProvisionerRequest{AllowLegacyCrypto: &on}, nil)
}

// TestSCEPEnvelopeNotDER: an AES envelope in BER (indefinite length) is
// refused as badMessageCheck, not as a legacy algorithm, unless legacy
// crypto is allowed, which admits it unchecked.
func TestSCEPEnvelopeNotDER(t *testing.T) {
	t.Parallel()
	in := tStrictSCEP(t)
	send := func(cn string) *smscep.PKIMessage {
		d := tNewSCEPDevice(t, in, "mdm")
		csr, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
			CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, ChallengePassword: in.scepChallenge("mdm", ""),
		}, d.key)
		if err != nil {
			t.Fatal(err)
		}
		ber := tIndefinite(t, tEnvelope(t, csr, d.ra, tAES))
		return d.send(d.signedMessage("19", ber, tSHA256, nil), d.self, d.key)
	}
	if rep := send("laptop-1"); rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadMessageCheck {
		t.Errorf("BER envelope: %s failInfo %q, want FAILURE badMessageCheck", rep.PKIStatus, string(rep.FailInfo))
	}
	in.allowLegacy("mdm")
	if rep := send("laptop-2"); rep.PKIStatus != smscep.SUCCESS {
		t.Errorf("BER envelope, legacy crypto allowed: %s %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
	}
}

// TestSCEPLegacyCSR: a PKCSReq with AES and SHA-256 whose CSR is signed
// over SHA-1 is refused badAlg unless legacy crypto is allowed, which
// lets it on to the challenge check (the CSR carries no challenge: Go
// writes no SHA-1 CSR with one, so badRequest there).
func TestSCEPLegacyCSR(t *testing.T) {
	t.Parallel()
	in := tStrictSCEP(t)
	send := func(cn string) *smscep.PKIMessage {
		d := tNewSCEPDevice(t, in, "mdm")
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: cn}, SignatureAlgorithm: x509.SHA1WithRSA}, d.key)
		if err != nil {
			t.Fatal(err)
		}
		return d.send(d.legacyMessage("19", csr, tAES, tSHA256, nil), d.self, d.key)
	}
	tWantBadAlg(t, send("laptop-1"), "a CSR signed over SHA-1")
	in.allowLegacy("mdm")
	if rep := send("laptop-2"); rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadRequest {
		t.Errorf("a CSR signed over SHA-1 without a challenge, legacy crypto allowed: %s %q, want FAILURE badRequest (the challenge check)", rep.PKIStatus, string(rep.FailInfo))
	}
}

// TestSCEPPollNonRSA: a GetCertInitial or a PKCSReq signed with an
// ECDSA key is refused badAlg (the CertRep would be encrypted to that
// key), before its transaction is looked up or its envelope opened.
func TestSCEPPollNonRSA(t *testing.T) {
	t.Parallel()
	in := tStrictSCEP(t)
	d := tNewSCEPDevice(t, in, "mdm")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec-device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := x509.ParseCertificate(der)
	ias, _ := asn1Marshal(d.ra.RawIssuer, self.RawSubject)
	for typ, what := range map[string]string{"20": "GetCertInitial", "19": "PKCSReq"} {
		e7, err := pkcs7.Encrypt(ias, []*x509.Certificate{d.ra})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := pkcs7.NewSignedData(e7)
		if err != nil {
			t.Fatal(err)
		}
		sd.SetDigestAlgorithm(tSHA256)
		oid := func(n int) []int { return []int{2, 16, 840, 1, 113733, 1, 9, n} }
		err = sd.AddSigner(self, key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
			{Type: oid(7), Value: "some-transaction"}, {Type: oid(2), Value: typ}, {Type: oid(5), Value: []byte("0123456789abcdef")},
		}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		tWantBadAlg(t, d.send(raw, self, nil), what+" signed with ECDSA")
	}
}
