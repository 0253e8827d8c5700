//go:build cgo

package ceremony

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/certwright/certwright/internal/keys/pkcs11"
	"github.com/certwright/certwright/internal/pki"
)

// keyIDBytes is the length of the random CKA_ID of a root key made in a
// token, as the server's token keys have.
const keyIDBytes = 16

// tokenKey is the root key in a PKCS#11 token.
type tokenKey struct {
	o   PKCS11Options
	cfg pkcs11.Config

	p         *pkcs11.Provider
	signer    *pkcs11.Signer
	generated bool
}

func newPKCS11Key(o PKCS11Options) (KeySource, error) {
	cfg := pkcs11.Config{Module: o.Module, TokenLabel: o.TokenLabel, TokenSerial: o.TokenSerial, PINFile: o.PINFile, PINEnv: o.PINEnv}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if o.dir != "" && pkcs11.ModuleInside(o.Module, o.dir) {
		return nil, fmt.Errorf("%w: the PKCS#11 module %s is inside the ceremony directory %s: whoever can write that directory could put a library there that logs in with the PIN and signs; use the module installed on this machine (root-owned, e.g. under /usr/lib)", ErrInvalid, o.Module, o.dir)
	}
	return &tokenKey{o: o, cfg: cfg}, nil
}

// provider logs in to the token, once.
func (k *tokenKey) provider(ctx context.Context) (*pkcs11.Provider, error) {
	if k.p != nil {
		return k.p, nil
	}
	p, err := pkcs11.Open(ctx, k.cfg, nil)
	if err != nil {
		switch {
		case errors.Is(err, pkcs11.ErrPIN):
			return nil, fmt.Errorf("ceremony: check the PIN file or variable before trying again (a token locks its user PIN after a few wrong tries): %w", err)
		case errors.Is(err, pkcs11.ErrTokenNotFound):
			return nil, fmt.Errorf("ceremony: the root key's token is not in any slot: connect it, or check its label or serial (softhsm2-util --show-slots or pkcs11-tool --module MODULE --list-slots shows them): %w", err)
		case errors.Is(err, pkcs11.ErrUnsafeModule):
			return nil, fmt.Errorf("ceremony: the PKCS#11 module %s is refused: only root may be able to change it; nothing was loaded: %w", k.o.Module, err)
		case errors.Is(err, pkcs11.ErrModule):
			return nil, fmt.Errorf("ceremony: the PKCS#11 module %s does not load: check its path: %w", k.o.Module, err)
		}
		return nil, fmt.Errorf("ceremony: open the PKCS#11 token: %w", err)
	}
	k.p = p
	return p, nil
}

// checkModule implements CheckKeyModule.
func (k *tokenKey) checkModule() (*KeyModule, error) {
	m, err := pkcs11.CheckModule(k.o.Module)
	if err != nil {
		return nil, fmt.Errorf("ceremony: the PKCS#11 module %s is refused (nothing was loaded): %w", k.o.Module, err)
	}
	return &KeyModule{Path: m.Path, File: m.File, SHA256: m.SHA256}, nil
}

// Generate implements KeySource: the key pair is made in the token, or,
// to adopt, the existing key is taken.
func (k *tokenKey) Generate(ctx context.Context, alg pki.KeyAlgorithm) (crypto.Signer, error) {
	if k.o.Adopt {
		sg, err := k.Open(ctx)
		if err != nil {
			return nil, err
		}
		got, err := pki.AlgorithmOf(sg.Public())
		if err != nil {
			return nil, fmt.Errorf("%w: the token's key %q: %w", ErrInvalid, k.o.KeyLabel, err)
		}
		if got != alg {
			return nil, fmt.Errorf("%w: the token's key %q is %s, not %s", ErrInvalid, k.o.KeyLabel, got, alg)
		}
		return sg, nil
	}
	if k.signer != nil || len(k.o.keyID) > 0 {
		return nil, fmt.Errorf("ceremony: the key source already holds the root key %q", k.o.KeyLabel)
	}
	p, err := k.provider(ctx)
	if err != nil {
		return nil, err
	}
	r := k.o.Rand
	if r == nil {
		r = rand.Reader
	}
	id := make([]byte, keyIDBytes)
	if _, err := io.ReadFull(r, id); err != nil {
		return nil, fmt.Errorf("ceremony: key ID: %w", err)
	}
	sg, err := p.GenerateKey(ctx, alg, k.o.KeyLabel, id)
	if err != nil {
		if errors.Is(err, pkcs11.ErrExists) {
			return nil, fmt.Errorf("ceremony: the token already has an object labelled %q: choose another key label, or adopt that key (it is never overwritten): %w", k.o.KeyLabel, err)
		}
		return nil, fmt.Errorf("ceremony: generate the root key in the token: %w", err)
	}
	k.signer, k.generated = sg, true
	return sg, nil
}

// Open implements KeySource: the key recorded is found by its CKA_ID and
// must still carry its label; a key to adopt is found by its label. Either
// is checked as the server checks a token key it adopts (in the token,
// private, sensitive and never extractable, ever; sign only; its public
// key object matching it).
func (k *tokenKey) Open(ctx context.Context) (crypto.Signer, error) {
	if k.signer != nil {
		return k.signer, nil
	}
	if !k.o.Adopt && len(k.o.keyID) == 0 {
		return nil, fmt.Errorf("ceremony: no root key in the token yet (generate it first)")
	}
	p, err := k.provider(ctx)
	if err != nil {
		return nil, err
	}
	sel := pkcs11.KeySelector{ID: k.o.keyID}
	if k.o.Adopt {
		sel = pkcs11.KeySelector{Label: k.o.KeyLabel}
	}
	sg, err := p.AdoptKey(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("ceremony: the root key %q in the token: %w", k.o.KeyLabel, err)
	}
	if sg.Label() != k.o.KeyLabel {
		return nil, fmt.Errorf("%w: the token's key with CKA_ID %x is labelled %q; the ceremony recorded %q", ErrState, sg.ID(), sg.Label(), k.o.KeyLabel)
	}
	k.signer = sg
	return sg, nil
}

// Ref implements KeySource: the token as it reported itself once opened,
// and the key's CKA_ID once known.
func (k *tokenKey) Ref() KeyRef {
	r := &PKCS11Ref{Module: k.o.Module, TokenLabel: k.o.TokenLabel, TokenSerial: k.o.TokenSerial, KeyLabel: k.o.KeyLabel, KeyID: hex.EncodeToString(k.o.keyID)}
	if k.p != nil {
		t := k.p.Token()
		r.TokenLabel, r.TokenSerial = t.Label, t.Serial
	}
	if k.signer != nil {
		r.KeyID = hex.EncodeToString(k.signer.ID())
	}
	return KeyRef{Source: SourcePKCS11, Location: pkcs11URI(r), PKCS11: r}
}

// Discard implements KeySource: a key pair Generate made is destroyed; an
// adopted key stays.
func (k *tokenKey) Discard(ctx context.Context) error {
	if !k.generated {
		return nil
	}
	if err := k.signer.Destroy(ctx); err != nil {
		return fmt.Errorf("ceremony: destroy the key pair %q made in the token: %w", k.o.KeyLabel, err)
	}
	k.signer, k.generated = nil, false
	return nil
}

// Close implements KeySource: logs out and unloads the module.
func (k *tokenKey) Close() error {
	k.signer = nil
	if k.p == nil {
		return nil
	}
	p := k.p
	k.p = nil
	if err := p.Close(); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}
