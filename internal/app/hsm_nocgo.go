//go:build !cgo

package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/certwright/certwright/internal/config"
)

// errNoPKCS11 is the start-up refusal of a build without cgo (the static
// binary) configured with a PKCS#11 token: the module is loaded with
// dlopen, which needs cgo.
var errNoPKCS11 = errors.New("app: keys.pkcs11 is set, but this build has no PKCS#11 support: build with CGO_ENABLED=1")

// openHSM refuses: this build cannot load a PKCS#11 module.
func openHSM(context.Context, *config.Config, *slog.Logger) (*hsmToken, error) {
	return nil, errNoPKCS11
}
