//go:build !cgo

package ceremony_test

import (
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/ceremony"
)

// TestNoPKCS11WithoutCgo: the static (CGO_ENABLED=0) build refuses a root
// key in a token, to make or to open, and says which build can.
func TestNoPKCS11WithoutCgo(t *testing.T) {
	_, err := ceremony.NewPKCS11Key(ceremony.PKCS11Options{
		Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "root", PINEnv: "HSM_PIN", KeyLabel: "root:Example",
	})
	if !errors.Is(err, ceremony.ErrNoPKCS11) || err.Error() != "ceremony: this build has no PKCS#11 support (it was built without cgo, and the module is loaded with dlopen): use a certwright built with CGO_ENABLED=1" {
		t.Errorf("NewPKCS11Key: %v", err)
	}
	ref := ceremony.KeyRef{Source: ceremony.SourcePKCS11, Location: "pkcs11:token=root", PKCS11: &ceremony.PKCS11Ref{
		Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "root", TokenSerial: "1a2b", KeyLabel: "root:Example", KeyID: "0a0b",
	}}
	if _, err := ceremony.OpenKeySource(t.TempDir(), ref, ceremony.Unlock{PKCS11: ceremony.PKCS11Unlock{PINEnv: "HSM_PIN"}}); !errors.Is(err, ceremony.ErrNoPKCS11) {
		t.Errorf("OpenKeySource: %v", err)
	}
}
