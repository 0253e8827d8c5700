//go:build cgo

package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHSMModuleInDataDir checks that a PKCS#11 module inside the data
// directory is refused before it is loaded, named directly or through a
// symbolic link from outside: whoever can write the data directory would
// otherwise run code in the server with the PIN and the KEK. The module
// is a copy of the real SoftHSM2 library, which would load and log in.
func TestHSMModuleInDataDir(t *testing.T) {
	cfg, tk := tHSMConfig(t, "")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(cfg.DataDir, "libsofthsm2.so")
	tCopyFile(t, tk.Module, inside, 0o644)
	link := filepath.Join(t.TempDir(), "link.so")
	if err := os.Symlink(inside, link); err != nil {
		t.Fatal(err)
	}
	for _, module := range []string{inside, link} {
		c := *cfg
		c.Keys.PKCS11.Module = module
		tok, err := openHSM(context.Background(), &c, tLogger())
		if err == nil {
			tok.Close()
			t.Fatalf("openHSM loaded %s", module)
		}
		for _, want := range []string{"inside the data directory", module, "keys.pkcs11.module"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("openHSM(%s): %q does not say %q", module, err, want)
			}
		}
	}
}
