package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Sealed data layout, version 1:
//
//	[0]      version (1)
//	[1:13]   GCM IV
//	[13:]    ciphertext, then the 16-byte tag
//
// The version byte is part of the additional data the tag covers, so a
// blob cannot be passed off as another version.
const (
	sealVersion1 = 1
	ivSize       = 12
	tagBits      = 128
	tagSize      = tagBits / 8
	sealOverhead = 1 + ivSize + tagSize
	kekBytes     = 32
)

// KEK is an AES-256 key-encryption key in the token: data is sealed and
// opened with CKM_AES_GCM inside the token, so the data directory holds
// nothing that opens it. It is safe for concurrent use.
type KEK struct {
	p   *Provider
	obj object
}

// Label returns the KEK's CKA_LABEL.
func (k *KEK) Label() string { return k.obj.label }

// GenerateKEK creates an AES-256 secret key in the token under label:
// private, sensitive, never extractable, for encryption and decryption
// only. It refuses (ErrExists) when an object already has the label.
func (p *Provider) GenerateKEK(ctx context.Context, label string) (*KEK, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	return p.generateKEK(ctx, label, kekTemplate(label))
}

// kekTemplate is the template of a new KEK labelled label.
func kekTemplate(label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, kekBytes),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// generateKEK generates the KEK label from tmpl.
func (p *Provider) generateKEK(ctx context.Context, label string, tmpl []*pkcs11.Attribute) (*KEK, error) {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	k := &KEK{p: p, obj: object{class: pkcs11.CKO_SECRET_KEY, label: label}}
	err := p.do(ctx, "generate KEK "+label, func(s session) error {
		if err := s.checkFree(label, nil); err != nil {
			return err
		}
		h, err := s.mod.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		if err != nil {
			return fmt.Errorf("C_GenerateKey: %w", err)
		}
		// A token may ignore or override a template's attributes: the
		// new key must pass the checks an adopted KEK does, or go.
		if err := s.checkKEK(k.obj.String(), h); err != nil {
			_ = s.mod.DestroyObject(s.h, h)
			return err
		}
		k.obj.set(s, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// AdoptKEK returns the KEK under label already in the token. It refuses
// (ErrUnsafeKey) a key that is not AES-256, is extractable or not
// sensitive, or may not both encrypt and decrypt.
func (p *Provider) AdoptKEK(ctx context.Context, label string) (*KEK, error) {
	if err := checkLabel(label); err != nil {
		return nil, err
	}
	k := &KEK{p: p, obj: object{class: pkcs11.CKO_SECRET_KEY, label: label}}
	err := p.do(ctx, "adopt KEK "+label, func(s session) error {
		h, err := k.obj.handle(s)
		if err != nil {
			return err
		}
		return s.checkKEK(k.obj.String(), h)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// checkKEK refuses (ErrUnsafeKey) the key h, named name, unless it is an
// AES-256 key that passes kekRules.
func (s session) checkKEK(name string, h pkcs11.ObjectHandle) error {
	a, err := s.attrs(h, append([]uint{pkcs11.CKA_KEY_TYPE, pkcs11.CKA_VALUE_LEN}, attrsOf(kekRules)...)...)
	if err != nil {
		return err
	}
	kt, _ := ulongAttr(a[pkcs11.CKA_KEY_TYPE])
	n, _ := ulongAttr(a[pkcs11.CKA_VALUE_LEN])
	if kt != pkcs11.CKK_AES || n != kekBytes {
		return fmt.Errorf("%w: %s is not an AES-256 key (key type %#x, %d bytes)", ErrUnsafeKey, name, kt, n)
	}
	return checkAttrs(name, a, kekRules)
}

// Destroy deletes the KEK from the token, after which nothing it sealed
// opens again. It is for undoing a KEK generated a moment ago for a data
// directory that was then not created.
func (k *KEK) Destroy(ctx context.Context) error {
	return k.p.do(ctx, "destroy "+k.obj.String(), func(s session) error {
		h, err := k.obj.handle(s)
		if err != nil {
			return err
		}
		if err := s.mod.DestroyObject(s.h, h); err != nil {
			return fmt.Errorf("C_DestroyObject: %w", err)
		}
		return nil
	})
}

// Seal encrypts plaintext with AES-256-GCM in the token under a random IV,
// authenticating additionalData too, and returns the version, the IV and
// the ciphertext with its tag.
func (k *KEK) Seal(ctx context.Context, plaintext, additionalData []byte) ([]byte, error) {
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("pkcs11: KEK: IV: %w", err)
	}
	var out []byte
	err := k.gcm(ctx, "seal", iv, additionalData, func(s session, h pkcs11.ObjectHandle, mech []*pkcs11.Mechanism, params *pkcs11.GCMParams) error {
		if err := s.mod.EncryptInit(s.h, mech, h); err != nil {
			return fmt.Errorf("C_EncryptInit: %w", err)
		}
		ct, err := s.mod.Encrypt(s.h, plaintext)
		if err != nil {
			return fmt.Errorf("C_Encrypt: %w", err)
		}
		// Some modules write an IV of their own into the parameters
		// instead of using the one given: keep the one used.
		used := params.IV()
		if len(used) != ivSize || len(ct) != len(plaintext)+tagSize {
			return fmt.Errorf("pkcs11: KEK: the token returned a %d-byte IV and %d bytes for %d of plaintext", len(used), len(ct), len(plaintext))
		}
		out = make([]byte, 0, sealOverhead+len(plaintext))
		out = append(out, sealVersion1)
		out = append(out, used...)
		out = append(out, ct...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Open decrypts what Seal returned for the same additionalData. Altered
// data, IV or additional data, or a blob sealed under another KEK, fail
// with an error wrapping ErrOpen.
func (k *KEK) Open(ctx context.Context, sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("%w: %d bytes, at least %d expected", ErrMalformed, len(sealed), sealOverhead)
	}
	if sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("%w: version %d (this build writes and reads version %d)", ErrMalformed, sealed[0], sealVersion1)
	}
	iv, ct := sealed[1:1+ivSize], sealed[1+ivSize:]
	var out []byte
	err := k.gcm(ctx, "open", iv, additionalData, func(s session, h pkcs11.ObjectHandle, mech []*pkcs11.Mechanism, _ *pkcs11.GCMParams) error {
		if err := s.mod.DecryptInit(s.h, mech, h); err != nil {
			return fmt.Errorf("C_DecryptInit: %w", err)
		}
		pt, err := s.mod.Decrypt(s.h, ct)
		if err != nil {
			if s.authFailure(err) {
				// %v: the return value is not the session's failure,
				// so it must not make the call reconnect.
				return fmt.Errorf("%w (C_Decrypt: %v)", ErrOpen, err)
			}
			return fmt.Errorf("C_Decrypt: %w", err)
		}
		out = pt
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// gcm runs fn on a session with the KEK's handle there and the
// CKM_AES_GCM mechanism for iv and additionalData, whose parameters it
// frees after fn: a module may write the IV it used into them.
func (k *KEK) gcm(ctx context.Context, op string, iv, additionalData []byte, fn func(s session, h pkcs11.ObjectHandle, mech []*pkcs11.Mechanism, params *pkcs11.GCMParams) error) error {
	aad := sealAAD(additionalData)
	return k.p.do(ctx, op+" with "+k.obj.String(), func(s session) error {
		h, err := k.obj.handle(s)
		if err != nil {
			return err
		}
		params := pkcs11.NewGCMParams(iv, aad, tagBits)
		defer params.Free()
		return fn(s, h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, params)
	})
}

// sealAAD is the additional data given to GCM: the format version, then
// the caller's.
func sealAAD(additionalData []byte) []byte {
	return append([]byte{sealVersion1}, additionalData...)
}

// authFailure reports whether err, returned by C_Decrypt, is the token's
// answer to a GCM tag that does not verify. The standard answer is
// CKR_ENCRYPTED_DATA_INVALID; SoftHSM2 (and others) answer
// CKR_GENERAL_ERROR, which is taken as the tag's failure only while the
// session and the token still answer, and otherwise as the token's.
func (s session) authFailure(err error) bool {
	if errors.Is(err, pkcs11.Error(pkcs11.CKR_ENCRYPTED_DATA_INVALID)) ||
		errors.Is(err, pkcs11.Error(pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE)) {
		return true
	}
	return errors.Is(err, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)) && s.answers()
}

// kekRules are what an AES key must be to be adopted as the KEK: in the
// token, usable only after log-in, never readable or extractable, and for
// encrypting and decrypting only (a KEK that may also wrap or unwrap could
// take extractable keys out, or put in a key whose value is known).
var kekRules = []attrRule{
	{pkcs11.CKA_TOKEN, true, "is a session object, gone when the session ends"},
	{pkcs11.CKA_EXTRACTABLE, false, "is extractable (CKA_EXTRACTABLE=true): it can be wrapped and taken out of the token"},
	{pkcs11.CKA_SENSITIVE, true, "is not sensitive (CKA_SENSITIVE=false): its value can be read from the token"},
	{pkcs11.CKA_PRIVATE, true, "is usable without logging in (CKA_PRIVATE=false): anyone who can load the module could open what it seals"},
	{pkcs11.CKA_NEVER_EXTRACTABLE, true, "was extractable once (CKA_NEVER_EXTRACTABLE=false): copies of it may exist outside the token"},
	{pkcs11.CKA_ALWAYS_SENSITIVE, true, "was not always sensitive (CKA_ALWAYS_SENSITIVE=false): its value may have been read out"},
	{pkcs11.CKA_ENCRYPT, true, "may not encrypt"},
	{pkcs11.CKA_DECRYPT, true, "may not decrypt"},
	{pkcs11.CKA_WRAP, false, "may also wrap keys (CKA_WRAP=true): it could take extractable keys out of the token"},
	{pkcs11.CKA_UNWRAP, false, "may also unwrap keys (CKA_UNWRAP=true): it could put in a key whose value is known"},
	{pkcs11.CKA_SIGN, false, "may also sign (CKA_SIGN=true): the KEK is for sealing only"},
	{pkcs11.CKA_DERIVE, false, "may also derive keys (CKA_DERIVE=true): the KEK is for sealing only"},
}
