//go:build !cgo

package app

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// TestNoPKCS11WithoutCgo: the static (CGO_ENABLED=0) build, configured
// with a PKCS#11 token, refuses to create or open an instance and says
// how to get a build that can.
func TestNoPKCS11WithoutCgo(t *testing.T) {
	cfg := tConfig(t, "")
	cfg.Keys = config.KeysConfig{
		CAKeyProvider: config.KeyProviderPKCS11,
		PKCS11:        config.PKCS11Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "certwright", PINEnv: "HSM_PIN"},
	}
	_, err := Init(context.Background(), cfg, tLogger(), clock.Real{})
	if !errors.Is(err, errNoPKCS11) || err.Error() != "app: keys.pkcs11 is set, but this build has no PKCS#11 support: build with CGO_ENABLED=1" {
		t.Fatalf("Init: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("refused init left %s behind", cfg.DataDir)
	}
	// The KEK sealed in the token is refused alike.
	cfg.Keys.KEKProvider = config.KEKProviderPKCS11
	if _, err := Init(context.Background(), cfg, tLogger(), clock.Real{}); !errors.Is(err, errNoPKCS11) {
		t.Fatalf("Init with the KEK in the token: %v", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("refused init left %s behind", cfg.DataDir)
	}
}
