//go:build cgo

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys/pkcs11"
)

// openHSM opens the PKCS#11 token keys.pkcs11 names. A token that cannot
// be opened (wrong PIN, token missing, module not loadable) is an error
// saying which setting to check: nothing that needs the token works
// without it.
func openHSM(ctx context.Context, cfg *config.Config, log *slog.Logger) (*hsmToken, error) {
	pc := cfg.Keys.PKCS11
	if err := checkModulePlace(cfg); err != nil {
		return nil, err
	}
	p, err := pkcs11.Open(ctx, pkcs11.Config{
		Module: pc.Module, TokenLabel: pc.TokenLabel, TokenSerial: pc.TokenSerial,
		PINFile: pc.PINPath(cfg.DataDir), PINEnv: pc.PINEnv,
	}, log.With("component", "pkcs11"))
	if err != nil {
		fix := "check keys.pkcs11 in the configuration"
		switch {
		case errors.Is(err, pkcs11.ErrPIN):
			fix = "the token refused the PIN: check the file keys.pkcs11.pin_file (or the variable keys.pkcs11.pin_env) names; a token locks its user PIN after a few wrong tries"
		case errors.Is(err, pkcs11.ErrTokenNotFound):
			fix = "the token is not in any slot: check keys.pkcs11.token_label (or token_serial) against the module's slots (softhsm2-util --show-slots, pkcs11-tool --list-slots) and that the HSM is connected"
		case errors.Is(err, pkcs11.ErrUnsafeModule):
			fix = "keys.pkcs11.module must be a library only root can change: install it root-owned, not writable by group or others, under root-owned directories (as a distribution package installs it under /usr/lib), and name that file"
		case errors.Is(err, pkcs11.ErrModule):
			fix = "check keys.pkcs11.module names the PKCS#11 library"
		}
		return nil, fmt.Errorf("app: the PKCS#11 token of keys.pkcs11 did not open (%s): %w", fix, err)
	}
	kek := func(ctx context.Context, label string, create bool) (tokenKEK, error) {
		var k *pkcs11.KEK
		var err error
		if create {
			k, err = p.GenerateKEK(ctx, label)
		} else {
			k, err = p.AdoptKEK(ctx, label)
		}
		switch {
		case errors.Is(err, pkcs11.ErrExists):
			return nil, fmt.Errorf("%w %q: %w", ErrTokenKEKExists, label, err)
		case errors.Is(err, pkcs11.ErrNotFound):
			return nil, fmt.Errorf("%w %q: %w", ErrTokenKEKMissing, label, err)
		case err != nil:
			return nil, err
		}
		return sealedErrs{k}, nil
	}
	return &hsmToken{keys: pkcs11.NewKeyProvider(p), kek: kek, close: p.Close}, nil
}

// sealedErrs is a token KEK whose Open failures are ErrSealedKEK too.
type sealedErrs struct{ *pkcs11.KEK }

func (k sealedErrs) Open(ctx context.Context, sealed, additionalData []byte) ([]byte, error) {
	b, err := k.KEK.Open(ctx, sealed, additionalData)
	if errors.Is(err, pkcs11.ErrOpen) || errors.Is(err, pkcs11.ErrMalformed) {
		return nil, fmt.Errorf("%w: %w", ErrSealedKEK, err)
	}
	return b, err
}

// checkModulePlace refuses a PKCS#11 module inside the data directory,
// named there or reached through a symbolic link: whoever can write the
// data directory (or put a backup into it) would run code in the server
// with the token's PIN and the KEK. When serve runs as root on a
// root-owned data directory, the module checks of the pkcs11 package
// alone would let it pass.
func checkModulePlace(cfg *config.Config) error {
	module := cfg.Keys.PKCS11.Module
	if pkcs11.ModuleInside(module, cfg.DataDir) {
		return fmt.Errorf("app: keys.pkcs11.module %s is inside the data directory %s: whoever can write the data directory could put code there that runs in this process with the token's PIN and the KEK; install the PKCS#11 library outside it, root-owned (as its package installs it, under /usr/lib), and point keys.pkcs11.module at it",
			module, cfg.DataDir)
	}
	return nil
}
