package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwright/certwright/internal/pki"
	"github.com/miekg/pkcs11"
)

// keySpec is how one key algorithm is made and read in a token.
type keySpec struct {
	keyType uint
	genMech uint
	bits    int            // RSA modulus size
	curve   elliptic.Curve // ECDSA curve
	oid     asn1.ObjectIdentifier
}

// keySpecs is the one table of key algorithms this provider generates and
// adopts (Ed25519 is not among them: few HSMs sign with it).
var keySpecs = map[pki.KeyAlgorithm]keySpec{
	pki.ECDSAP256: {keyType: pkcs11.CKK_EC, genMech: pkcs11.CKM_EC_KEY_PAIR_GEN, curve: elliptic.P256(), oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}},
	pki.ECDSAP384: {keyType: pkcs11.CKK_EC, genMech: pkcs11.CKM_EC_KEY_PAIR_GEN, curve: elliptic.P384(), oid: asn1.ObjectIdentifier{1, 3, 132, 0, 34}},
	pki.RSA2048:   {keyType: pkcs11.CKK_RSA, genMech: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 2048},
	pki.RSA3072:   {keyType: pkcs11.CKK_RSA, genMech: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 3072},
	pki.RSA4096:   {keyType: pkcs11.CKK_RSA, genMech: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 4096},
}

// rsaPublicExponent is F4 (65537), the exponent every RSA key here uses.
var rsaPublicExponent = []byte{1, 0, 1}

// GenerateKey creates a key pair of algorithm alg inside the token, as
// token objects named by label and id (the caller's, e.g. the CA's ID).
// The private key is private, sensitive, never extractable and can sign
// only. It refuses (ErrExists) when any object already has label or id.
func (p *Provider) GenerateKey(ctx context.Context, alg pki.KeyAlgorithm, label string, id []byte) (*Signer, error) {
	spec, ok := keySpecs[alg]
	if !ok {
		return nil, fmt.Errorf("%w: key algorithm %q", ErrUnsupported, alg)
	}
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	pubTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, spec.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if spec.keyType == pkcs11.CKK_EC {
		params, err := asn1.Marshal(spec.oid)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: curve parameters: %w", err)
		}
		pubTmpl = append(pubTmpl, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
	} else {
		pubTmpl = append(pubTmpl,
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, rsaPublicExponent))
	}
	privTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, spec.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	p.genMu.Lock()
	defer p.genMu.Unlock()
	sg := &Signer{p: p, alg: alg, spec: spec, obj: object{class: pkcs11.CKO_PRIVATE_KEY, label: label, id: bytes.Clone(id)}}
	err := p.do(ctx, "generate "+string(alg)+" key "+label, func(s session) error {
		if err := s.checkFree(label, id); err != nil {
			return err
		}
		pubH, privH, err := s.mod.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(spec.genMech, nil)}, pubTmpl, privTmpl)
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		pub, err := s.readPublic(pubH, spec)
		if err == nil {
			// A token may ignore or override a template's attributes:
			// the new key must pass the checks an adopted key does.
			err = s.checkSigningKey(sg.obj.String(), privH)
		}
		if err != nil {
			// Leave no half-made key behind under the caller's label.
			_ = s.mod.DestroyObject(s.h, privH)
			_ = s.mod.DestroyObject(s.h, pubH)
			return err
		}
		sg.pub = pub
		sg.obj.set(s, privH)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sg, nil
}

// DestroyKey destroys the key pair with CKA_ID id: its private and public
// key objects, each of which must carry label. It refuses (ErrNotBound),
// destroying nothing, when an object with that CKA_ID has another label
// or is not a key pair's half. No object with that CKA_ID is no error:
// the key is gone already.
func (p *Provider) DestroyKey(ctx context.Context, id []byte, label string) error {
	if err := checkID(id); err != nil {
		return err
	}
	name := (&object{label: label, id: id}).String()
	return p.do(ctx, "destroy "+name, func(s session) error {
		found, err := s.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id)})
		if err != nil {
			return err
		}
		if len(found) > 2 {
			return fmt.Errorf("%w: %d objects have the CKA_ID of %s, a key pair has 2", ErrAmbiguous, len(found), name)
		}
		// The private key goes first: a public key left behind alone
		// signs nothing, a private key left alone still could.
		var order []pkcs11.ObjectHandle
		for _, h := range found {
			a, err := s.attrs(h, pkcs11.CKA_CLASS, pkcs11.CKA_LABEL)
			if err != nil {
				return err
			}
			class, _ := ulongAttr(a[pkcs11.CKA_CLASS])
			if got := string(a[pkcs11.CKA_LABEL]); got != label {
				return fmt.Errorf("%w: the token's object with the CKA_ID of %s is labelled %q", ErrNotBound, name, got)
			}
			switch class {
			case pkcs11.CKO_PRIVATE_KEY:
				order = append([]pkcs11.ObjectHandle{h}, order...)
			case pkcs11.CKO_PUBLIC_KEY:
				order = append(order, h)
			default:
				return fmt.Errorf("%w: the token's object with the CKA_ID of %s is not a private or public key (class %d)", ErrNotBound, name, class)
			}
		}
		for _, h := range order {
			if err := s.mod.DestroyObject(s.h, h); err != nil {
				return fmt.Errorf("C_DestroyObject: %w", err)
			}
		}
		return nil
	})
}

// KeySelector names an existing private key by its label or by its
// CKA_ID (exactly one).
type KeySelector struct {
	Label string
	ID    []byte
}

func (k KeySelector) String() string {
	if k.Label != "" {
		return fmt.Sprintf("label %q", k.Label)
	}
	return "CKA_ID " + hex.EncodeToString(k.ID)
}

// AdoptKey returns a signer for a key pair already in the token (made by
// pkcs11-tool or an HSM's own tools). It refuses (ErrUnsafeKey), saying
// why, a private key that is not a token object, not sensitive,
// extractable or not allowed to sign, one without a public key object of
// the same CKA_ID, and one whose public key object does not verify a
// signature the private key makes.
func (p *Provider) AdoptKey(ctx context.Context, sel KeySelector) (*Signer, error) {
	if (sel.Label == "") == (len(sel.ID) == 0) {
		return nil, fmt.Errorf("%w: name the key by exactly one of label and ID", ErrConfig)
	}
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if sel.Label != "" {
		if err := checkLabel(sel.Label); err != nil {
			return nil, err
		}
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, sel.Label))
	} else {
		if err := checkID(sel.ID); err != nil {
			return nil, err
		}
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, sel.ID))
	}
	var sg *Signer
	err := p.do(ctx, "adopt key "+sel.String(), func(s session) error {
		found, err := s.find(tmpl)
		if err != nil {
			return err
		}
		switch len(found) {
		case 0:
			return fmt.Errorf("%w: no private key with %s", ErrNotFound, sel)
		case 1:
		default:
			return fmt.Errorf("%w: %d private keys with %s", ErrAmbiguous, len(found), sel)
		}
		sg, err = s.adopt(p, found[0])
		return err
	})
	if err != nil {
		return nil, err
	}
	return sg, nil
}

// signingKeyRules are what a private key must be to be adopted as a CA
// key: in the token, usable only after log-in, never readable or
// extractable (now or ever: a key that once was may have copies), and for
// signing only.
var signingKeyRules = []attrRule{
	{pkcs11.CKA_TOKEN, true, "is a session object, gone when the session ends"},
	{pkcs11.CKA_EXTRACTABLE, false, "is extractable (CKA_EXTRACTABLE=true): it can be wrapped and taken out of the token"},
	{pkcs11.CKA_SENSITIVE, true, "is not sensitive (CKA_SENSITIVE=false): its private value can be read from the token"},
	{pkcs11.CKA_SIGN, true, "may not sign (CKA_SIGN=false)"},
	{pkcs11.CKA_PRIVATE, true, "is usable without logging in (CKA_PRIVATE=false): anyone who can load the module could sign with it"},
	{pkcs11.CKA_NEVER_EXTRACTABLE, true, "was extractable once (CKA_NEVER_EXTRACTABLE=false): copies of it may exist outside the token"},
	{pkcs11.CKA_ALWAYS_SENSITIVE, true, "was not always sensitive (CKA_ALWAYS_SENSITIVE=false): its value may have been read out"},
	{pkcs11.CKA_DERIVE, false, "may also derive keys (CKA_DERIVE=true): a CA key is for signing only"},
}

// rsaKeyRules add, for an RSA key, that it may not decrypt or unwrap: raw
// RSA decryption with a CA key is a signature on anything.
var rsaKeyRules = []attrRule{
	{pkcs11.CKA_DECRYPT, false, "may also decrypt (CKA_DECRYPT=true): with RSA that signs whatever is asked"},
	{pkcs11.CKA_UNWRAP, false, "may also unwrap keys (CKA_UNWRAP=true): with RSA that decrypts whatever is asked"},
}

// adopt checks the private key privH and its public key object and
// returns their signer.
func (s session) adopt(p *Provider, privH pkcs11.ObjectHandle) (*Signer, error) {
	a, err := s.attrs(privH, pkcs11.CKA_LABEL, pkcs11.CKA_ID, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, err
	}
	label, id := string(a[pkcs11.CKA_LABEL]), a[pkcs11.CKA_ID]
	name := (&object{label: label, id: id}).String()
	if err := s.checkSigningKey(name, privH); err != nil {
		return nil, err
	}
	switch {
	case len(id) == 0:
		return nil, fmt.Errorf("%w: %s has no CKA_ID, so its public key object cannot be told apart", ErrUnsafeKey, name)
	}
	keyType, _ := ulongAttr(a[pkcs11.CKA_KEY_TYPE])
	pubs, err := s.publicKeys(id)
	if err != nil {
		return nil, err
	}
	switch len(pubs) {
	case 0:
		return nil, fmt.Errorf("%w: %s has no public key object with its CKA_ID", ErrUnsafeKey, name)
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d public key objects have the CKA_ID of %s", ErrAmbiguous, len(pubs), name)
	}
	pub, alg, spec, err := s.readAnyPublic(pubs[0], keyType)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sg := &Signer{p: p, alg: alg, spec: spec, pub: pub, obj: object{class: pkcs11.CKO_PRIVATE_KEY, label: label, id: bytes.Clone(id)}}
	sg.obj.set(s, privH)
	// The public key object could belong to another key: only a signature
	// made by the private key and verified with it shows that they match.
	probe := sha256.Sum256([]byte("certwright pkcs11 adopt " + name))
	var opts crypto.SignerOpts = crypto.SHA256
	sig, err := sg.signOn(s, probe[:], opts)
	if err != nil {
		return nil, fmt.Errorf("%s: test signature: %w", name, err)
	}
	if err := verify(pub, probe[:], sig, opts); err != nil {
		return nil, fmt.Errorf("%w: the public key object with the CKA_ID of %s does not match the private key: %w", ErrUnsafeKey, name, err)
	}
	return sg, nil
}

// readPublic reads the public key of pubH, made with spec.
func (s session) readPublic(pubH pkcs11.ObjectHandle, spec keySpec) (crypto.PublicKey, error) {
	if spec.keyType == pkcs11.CKK_RSA {
		return s.readRSA(pubH)
	}
	a, err := s.attrs(pubH, pkcs11.CKA_EC_POINT)
	if err != nil {
		return nil, err
	}
	return parseECPoint(spec.curve, a[pkcs11.CKA_EC_POINT])
}

// readAnyPublic reads the public key of pubH, which must be of keyType
// and of an algorithm in keySpecs.
func (s session) readAnyPublic(pubH pkcs11.ObjectHandle, keyType uint) (crypto.PublicKey, pki.KeyAlgorithm, keySpec, error) {
	a, err := s.attrs(pubH, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, "", keySpec{}, err
	}
	if kt, _ := ulongAttr(a[pkcs11.CKA_KEY_TYPE]); kt != keyType {
		return nil, "", keySpec{}, fmt.Errorf("%w: the public key object is of key type %#x, the private key of %#x", ErrUnsafeKey, kt, keyType)
	}
	var pub crypto.PublicKey
	switch keyType {
	case pkcs11.CKK_RSA:
		pub, err = s.readRSA(pubH)
	case pkcs11.CKK_EC:
		pub, err = s.readEC(pubH)
	default:
		return nil, "", keySpec{}, fmt.Errorf("%w: key type %#x (only RSA and EC keys)", ErrUnsupported, keyType)
	}
	if err != nil {
		return nil, "", keySpec{}, err
	}
	alg, err := pki.AlgorithmOf(pub)
	if err != nil {
		return nil, "", keySpec{}, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	spec, ok := keySpecs[alg]
	if !ok {
		return nil, "", keySpec{}, fmt.Errorf("%w: key algorithm %s", ErrUnsupported, alg)
	}
	return pub, alg, spec, nil
}

func (s session) readRSA(pubH pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	a, err := s.attrs(pubH, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
	e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
	if n.Sign() == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("pkcs11: the token returned an invalid RSA public key")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (s session) readEC(pubH pkcs11.ObjectHandle) (*ecdsa.PublicKey, error) {
	a, err := s.attrs(pubH, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
	if err != nil {
		return nil, err
	}
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(a[pkcs11.CKA_EC_PARAMS], &oid); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: EC parameters that are not a named curve", ErrUnsupported)
	}
	for _, spec := range keySpecs {
		if spec.oid.Equal(oid) {
			return parseECPoint(spec.curve, a[pkcs11.CKA_EC_POINT])
		}
	}
	return nil, fmt.Errorf("%w: curve %s (only P-256 and P-384)", ErrUnsupported, oid)
}

// parseECPoint reads CKA_EC_POINT: a DER OCTET STRING holding the
// uncompressed point, as PKCS#11 v2.20 on says, or (from some modules)
// the bare point.
func parseECPoint(curve elliptic.Curve, v []byte) (*ecdsa.PublicKey, error) {
	point := v
	in := cryptobyte.String(v)
	var inner cryptobyte.String
	if in.ReadASN1(&inner, cbasn1.OCTET_STRING) && in.Empty() {
		point = inner
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: the token returned an invalid EC point: %w", err)
	}
	return pub, nil
}

// verify checks sig over digest with pub, as crypto/x509 would.
func verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(k, pss.Hash, digest, sig, pss)
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig)
	}
	return fmt.Errorf("%w: public key type %T", ErrUnsupported, pub)
}

// checkSigningKey checks the private key privH against signingKeyRules
// and, for an RSA key, rsaKeyRules.
func (s session) checkSigningKey(name string, privH pkcs11.ObjectHandle) error {
	a, err := s.attrs(privH, append([]uint{pkcs11.CKA_KEY_TYPE}, attrsOf(signingKeyRules)...)...)
	if err != nil {
		return err
	}
	if err := checkAttrs(name, a, signingKeyRules); err != nil {
		return err
	}
	if kt, _ := ulongAttr(a[pkcs11.CKA_KEY_TYPE]); kt == pkcs11.CKK_RSA {
		r, err := s.attrs(privH, attrsOf(rsaKeyRules)...)
		if err != nil {
			return err
		}
		return checkAttrs(name, r, rsaKeyRules)
	}
	return nil
}
