package pkcs11

import (
	"context"
	"fmt"
	"testing"

	"github.com/certwright/certwright/internal/pki"

	"github.com/miekg/pkcs11"
)

// keyFlags are the attributes of a test key pair that the provider checks
// before adopting it.
type keyFlags struct {
	extractable, sensitive, sign bool
	// public leaves CKA_PRIVATE false (usable without log-in); derive
	// sets CKA_DERIVE; wasExtractable makes the key extractable, then
	// sets CKA_EXTRACTABLE false (so CKA_NEVER_EXTRACTABLE stays false).
	public, derive, wasExtractable bool
}

// makeECKeyPair creates a P-256 key pair in the token with the flags given,
// as a tool other than the provider might.
func (p *Provider) makeECKeyPair(ctx context.Context, label string, id []byte, f keyFlags) error {
	spec := keySpecs[pki.ECDSAP256]
	return p.do(ctx, "test key pair", func(s session) error {
		params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
		_, priv, err := s.mod.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(spec.genMech, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, !f.public),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, f.sensitive),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, f.extractable || f.wasExtractable),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, f.sign),
				pkcs11.NewAttribute(pkcs11.CKA_DERIVE, f.derive),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
				pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			})
		if err != nil || !f.wasExtractable {
			return err
		}
		return s.mod.SetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false)})
	})
}

// makeAESKey creates an AES key of n bytes under label with the flags given.
func (p *Provider) makeAESKey(ctx context.Context, label string, n int, extractable, sensitive bool) error {
	return p.do(ctx, "test AES key", func(s session) error {
		_, err := s.mod.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, n),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, sensitive),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
				pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			})
		return err
	})
}

// destroyPublic destroys the public key objects with CKA_ID id.
func (p *Provider) destroyPublic(ctx context.Context, id []byte) error {
	return p.do(ctx, "test destroy", func(s session) error {
		found, err := s.publicKeys(id)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("no public key with CKA_ID %x", id)
		}
		for _, h := range found {
			if err := s.mod.DestroyObject(s.h, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// setPublicID gives the public key object with CKA_ID from the CKA_ID to.
func (p *Provider) setPublicID(ctx context.Context, from, to []byte) error {
	return p.do(ctx, "test set ID", func(s session) error {
		found, err := s.publicKeys(from)
		if err != nil {
			return err
		}
		if len(found) != 1 {
			return fmt.Errorf("%d public keys with CKA_ID %x", len(found), from)
		}
		return s.mod.SetAttributeValue(s.h, found[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, to)})
	})
}

// closeAllSessions closes every session of the token through the module,
// as a token that resets its sessions does; the user is logged out with
// the last one. It waits for the calls in flight: SoftHSM2 crashes when a
// session is closed under a call that uses it.
func (p *Provider) closeAllSessions() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return errLost
	}
	return p.mod.CloseAllSessions(p.conn.slot)
}

// loginAgain logs in on a new session while the provider is logged in,
// which the token answers with CKR_USER_ALREADY_LOGGED_IN.
func (p *Provider) loginAgain() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.connect()
	if err != nil {
		return err
	}
	return p.mod.CloseSession(c.login)
}

// serial is the serial number of the provider's token.
func (p *Provider) serial(t testing.TB) string {
	t.Helper()
	p.mu.RLock()
	defer p.mu.RUnlock()
	info, err := p.mod.GetTokenInfo(p.conn.slot)
	if err != nil {
		t.Fatal(err)
	}
	return info.SerialNumber
}

// generation is the number of the provider's connection to the token.
func (p *Provider) generation() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.gen
}
