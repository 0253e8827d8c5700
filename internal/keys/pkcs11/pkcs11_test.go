package pkcs11

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Module: "/m.so", TokenLabel: "L", PINFile: "/pin"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"serial and env", func(c *Config) { c.TokenLabel, c.TokenSerial, c.PINFile, c.PINEnv = "", "abc", "", "PIN" }, ""},
		{"no module", func(c *Config) { c.Module = "" }, "module"},
		{"relative module", func(c *Config) { c.Module = "libsofthsm2.so" }, "not an absolute path"},
		{"no token", func(c *Config) { c.TokenLabel = "" }, "exactly one of token label and token serial"},
		{"label and serial", func(c *Config) { c.TokenSerial = "abc" }, "exactly one of token label and token serial"},
		{"no PIN source", func(c *Config) { c.PINFile = "" }, "exactly one of PIN file"},
		{"two PIN sources", func(c *Config) { c.PINEnv = "PIN" }, "exactly one of PIN file"},
		{"negative sessions", func(c *Config) { c.MaxSessions = -1 }, "max sessions"},
		{"negative retries", func(c *Config) { c.Retries = -1 }, "retries"},
		{"negative backoff", func(c *Config) { c.RetryBackoff = -time.Second }, "backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantErr(t, err, ErrConfig, tt.want)
		})
	}
}

func TestPINFile(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, content string
		want          string
	}{
		{"newline trimmed", "1234\n", "1234"},
		{"CRLF trimmed", "1234\r\n", "1234"},
		{"no newline", "1234", "1234"},
		{"only one newline trimmed", "1234\n\n", "1234\n"},
		{"spaces kept", " 12 34 ", " 12 34 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Config{PINFile: writePIN(t, tt.content, 0o600)}.readPIN()
			if err != nil || got != tt.want {
				t.Fatalf("readPIN = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		_, err := Config{PINFile: writePIN(t, "\n", 0o600)}.readPIN()
		wantErr(t, err, ErrConfig, "empty")
	})
	t.Run("too long", func(t *testing.T) {
		t.Parallel()
		_, err := Config{PINFile: writePIN(t, strings.Repeat("1", maxPINFileSize+1), 0o600)}.readPIN()
		wantErr(t, err, ErrConfig, "over")
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := Config{PINFile: t.TempDir() + "/none"}.readPIN()
		wantErr(t, err, os.ErrNotExist)
	})
	for _, perm := range []os.FileMode{0o640, 0o604, 0o620, 0o644} {
		t.Run("mode "+perm.String(), func(t *testing.T) {
			t.Parallel()
			path := writePIN(t, "1234\n", perm)
			_, err := Config{PINFile: path}.readPIN()
			wantErr(t, err, ErrPINFileMode, "chmod 600 "+path)
		})
	}
}

// TestOpenRefusesPINFileMode checks that Open itself refuses a PIN file
// others can read, before it loads any module.
func TestOpenRefusesPINFileMode(t *testing.T) {
	t.Parallel()
	path := writePIN(t, "1234\n", 0o644)
	_, err := Open(context.Background(), Config{Module: "/nonexistent.so", TokenLabel: "L", PINFile: path}, nil)
	wantErr(t, err, ErrPINFileMode, "chmod 600")
}

func TestPINEnv(t *testing.T) {
	t.Setenv("CERTWRIGHT_TEST_PKCS11_PIN", "4321")
	got, err := Config{PINEnv: "CERTWRIGHT_TEST_PKCS11_PIN"}.readPIN()
	if err != nil || got != "4321" {
		t.Fatalf("readPIN = %q, %v", got, err)
	}
	if v, ok := os.LookupEnv("CERTWRIGHT_TEST_PKCS11_PIN"); ok {
		t.Errorf("the PIN is still in the environment (%q), for every child process to inherit", v)
	}
	_, err = Config{PINEnv: "CERTWRIGHT_TEST_PKCS11_PIN_UNSET"}.readPIN()
	wantErr(t, err, ErrConfig, "CERTWRIGHT_TEST_PKCS11_PIN_UNSET is not set")
}

func TestOpen(t *testing.T) {
	st := newSoftToken(t, "open")
	ctx := context.Background()

	t.Run("wrong PIN", func(t *testing.T) {
		cfg := st.config(t)
		cfg.PINFile = writePIN(t, "9999\n", 0o600)
		p, err := Open(ctx, cfg, testLogger(t))
		if err == nil {
			p.Close()
		}
		wantErr(t, err, ErrPIN, `token "open"`, "CKR_PIN_INCORRECT")
	})
	t.Run("PIN from environment", func(t *testing.T) {
		t.Setenv("CERTWRIGHT_TEST_PKCS11_PIN", testPIN)
		cfg := st.config(t)
		cfg.PINFile, cfg.PINEnv = "", "CERTWRIGHT_TEST_PKCS11_PIN"
		open(t, cfg)
	})
	t.Run("token not found", func(t *testing.T) {
		cfg := st.config(t)
		cfg.TokenLabel = "absent"
		_, err := Open(ctx, cfg, testLogger(t))
		wantErr(t, err, ErrTokenNotFound, `"absent"`, `present: "open"`)
	})
	t.Run("module missing", func(t *testing.T) {
		cfg := st.config(t)
		cfg.Module = t.TempDir() + "/none.so"
		_, err := Open(ctx, cfg, testLogger(t))
		wantErr(t, err, ErrModule, "none.so")
		// A file in a temporary directory is refused before it is
		// loaded: /tmp is writable by all.
		cfg.Module = t.TempDir() + "/text.so"
		if err := os.WriteFile(cfg.Module, []byte("not a library"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, cfg, testLogger(t))
		wantErr(t, err, ErrUnsafeModule, "writable by group or others", "chmod go-w")
		// A root-owned file in root-owned directories passes the
		// checks, and is then not a library.
		if _, err := CheckModule("/etc/passwd"); err != nil {
			t.Skipf("no root-owned non-library to load: %v", err)
		}
		cfg.Module = "/etc/passwd"
		_, err = Open(ctx, cfg, testLogger(t))
		wantErr(t, err, ErrModule, "cannot be loaded as a PKCS#11 library")
	})
	t.Run("by serial", func(t *testing.T) {
		p := open(t, st.config(t))
		serial := p.serial(t)
		p.Close()
		cfg := st.config(t)
		cfg.TokenLabel, cfg.TokenSerial = "", serial
		open(t, cfg)
	})
	t.Run("module in use", func(t *testing.T) {
		p := open(t, st.config(t))
		_, err := Open(ctx, st.config(t), testLogger(t))
		wantErr(t, err, ErrModuleInUse)
		// The refused Open must leave the first provider working.
		if _, err := p.Capabilities(ctx); err != nil {
			t.Fatalf("first provider after a refused Open: %v", err)
		}
	})
	t.Run("user already logged in", func(t *testing.T) {
		p := open(t, st.config(t))
		if err := p.loginAgain(); err != nil {
			t.Fatalf("logging in while logged in: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		p := open(t, st.config(t))
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := p.GenerateKey(ctx, pki.ECDSAP256, "k", []byte{1})
		wantErr(t, err, ErrClosed)
		if err := p.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestCapabilities(t *testing.T) {
	st := newSoftToken(t, "caps")
	p := open(t, st.config(t))
	c, err := p.Capabilities(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Exportable {
		t.Error("Exportable is true")
	}
	want := []pki.KeyAlgorithm{pki.ECDSAP256, pki.ECDSAP384, pki.RSA2048, pki.RSA3072, pki.RSA4096}
	if !sameAlgs(c.Algorithms, want) {
		t.Errorf("Algorithms = %v, want %v", c.Algorithms, want)
	}
	if !c.KEK {
		t.Error("KEK is false: SoftHSM2 has CKM_AES_KEY_GEN and CKM_AES_GCM")
	}
}

func sameAlgs(a, b []pki.KeyAlgorithm) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[pki.KeyAlgorithm]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
