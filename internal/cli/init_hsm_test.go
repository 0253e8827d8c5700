//go:build cgo

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
)

// TestInitKeyProviderPKCS11: init --key-provider pkcs11 makes the root and
// issuing CA keys in the token and writes the keys section (the PIN
// file's absolute path, never the PIN) into config.yaml; without a token
// it is refused before anything is created.
func TestInitKeyProviderPKCS11(t *testing.T) {
	tk := softhsmtest.New(t, "cli-init")
	pin := tk.PINFile(t)
	t.Chdir(filepath.Dir(pin)) // the flag takes a path relative to here
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := run(t, nil, "init", "--data-dir", dir, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--key-provider", "pkcs11", "--pkcs11-module", tk.Module, "--pkcs11-token", tk.Label, "--pkcs11-pin-file", filepath.Base(pin))
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	cfg, err := config.ReadFile(filepath.Join(dir, config.FileName), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := config.KeysConfig{CAKeyProvider: "pkcs11", KEKProvider: "pkcs11", PKCS11: config.PKCS11Config{Module: tk.Module, TokenLabel: tk.Label, PINFile: pin, KEKLabel: "certwright-kek"}}
	if cfg.Keys != want {
		t.Errorf("config.yaml keys %+v, want %+v", cfg.Keys, want)
	}
	// The KEK is in the token too: DATA/kek.p11 holds it sealed, and no
	// DATA/kek exists.
	if _, err := os.Stat(filepath.Join(dir, "kek")); !os.IsNotExist(err) {
		t.Errorf("init --key-provider pkcs11 wrote a plain KEK file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kek.p11")); err != nil {
		t.Errorf("no sealed KEK: %v", err)
	}
	if !strings.Contains(out, "kek.p11, sealed by the token's key \"certwright-kek\"") {
		t.Errorf("init output does not say where the KEK is:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "pin:") {
		t.Errorf("config.yaml holds a PIN setting:\n%s", raw)
	}
	n := 0
	for k, access := range tk.Objects(t) {
		if strings.HasPrefix(k, "Private Key Object/ca:ca_") && softhsmtest.Safe(access) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d sensitive, never extractable CA keys in the token, want root and issuing", n)
	}
	if access, ok := tk.Objects(t)["Secret Key Object/certwright-kek"]; !ok || !softhsmtest.Safe(access) {
		t.Errorf("token KEK: found %v, Access %v; want sensitive, never extractable", ok, access)
	}

	// --kek-provider file keeps the KEK in DATA/kek, the CA keys in the
	// token.
	fileKEK := filepath.Join(t.TempDir(), "data")
	code, out, errOut = run(t, nil, "init", "--data-dir", fileKEK, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--key-provider", "pkcs11", "--kek-provider", "file", "--pkcs11-module", tk.Module, "--pkcs11-token", tk.Label, "--pkcs11-pin-file", filepath.Base(pin))
	if code != 0 {
		t.Fatalf("init --kek-provider file: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(fileKEK, "kek")); err != nil {
		t.Errorf("init --kek-provider file: %v", err)
	}

	d := filepath.Join(t.TempDir(), "data")
	code, _, errOut = run(t, nil, "init", "--data-dir", d, "--key-provider", "pkcs11")
	if code == 0 || !strings.Contains(errOut, "keys.ca_key_provider") || !strings.Contains(errOut, "keys.pkcs11") {
		t.Errorf("init --key-provider pkcs11 without a token: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("refused init left %s behind", d)
	}
}
