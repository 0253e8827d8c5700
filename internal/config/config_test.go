package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/config"
)

func defaulted(t *testing.T, yaml string) *config.Config {
	t.Helper()
	var c config.Config
	if err := c.Decode([]byte(yaml), "test.yaml"); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	c.Defaults()
	return &c
}

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	var c config.Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.PublicHTTPURL != "http://"+c.HTTPListen {
		t.Errorf("PublicHTTPURL = %q, want http:// + HTTPListen %q", c.PublicHTTPURL, c.HTTPListen)
	}
	if c.DefaultCA != c.Init.IssuingName {
		t.Errorf("DefaultCA = %q, want the issuing CA %q", c.DefaultCA, c.Init.IssuingName)
	}
	// Defaults never overwrite what was set.
	c2 := config.Config{HTTPListen: "10.0.0.1:80", RestoreWindowDays: 7, LogLevel: "debug"}
	c2.Defaults()
	if c2.HTTPListen != "10.0.0.1:80" || c2.RestoreWindowDays != 7 || c2.LogLevel != "debug" || c2.PublicHTTPURL != "http://10.0.0.1:80" {
		t.Errorf("Defaults overwrote set fields: %+v", c2)
	}
	if err := c2.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		field string // named in the error; "" means decoding succeeds
	}{
		{"empty", "", ""},
		{"comment only", "# nothing\n", ""},
		{"known fields", "http_listen: 127.0.0.1:9000\nrestore_window_days: 14\ninit:\n  root_key: ecdsa-p256\n", ""},
		{"unknown top-level field", "http_listen: 127.0.0.1:9000\nbogus_setting: 1\n", "bogus_setting"},
		{"unknown nested field", "init:\n  root_kee: rsa-2048\n", "root_kee"},
		{"misspelt field", "public_http_uri: http://x\n", "public_http_uri"},
		// The PIN is never a setting: only where to read it.
		{"pkcs11 pin itself", "keys:\n  pkcs11:\n    module: /m.so\n    token_label: t\n    pin: 1234\n", "keys.pkcs11.pin"},
		{"data_dir is not a file setting", "data_dir: /tmp\n", "data_dir"},
		{"wrong type", "restore_window_days: soon\n", "soon"},
		{"not a mapping", "- a\n- b\n", "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c config.Config
			err := c.Decode([]byte(tt.yaml), "test.yaml")
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Decode error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "test.yaml") {
				t.Errorf("error %q does not name %q and the file", err, tt.field)
			}
		})
	}

	t.Run("values land", func(t *testing.T) {
		t.Parallel()
		c := defaulted(t, "http_listen: 127.0.0.1:9000\nrestore_window_days: 14\ninit:\n  root_key: ecdsa-p256\n")
		if c.HTTPListen != "127.0.0.1:9000" || c.RestoreWindowDays != 14 || c.Init.RootKey != "ecdsa-p256" {
			t.Errorf("decoded %+v", c)
		}
		if c.PublicHTTPURL != "http://127.0.0.1:9000" {
			t.Errorf("PublicHTTPURL = %q, want it to follow http_listen", c.PublicHTTPURL)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		field string // "" means valid
	}{
		{"public url with port", "public_http_url: http://pki.example.internal:8080\n", ""},
		{"public url with slash", "public_http_url: http://pki.example.internal/\n", ""},
		{"ipv6 listen", "http_listen: '[::1]:8080'\n", ""},
		{"sqlite db", "db: sqlite:/var/lib/cw.db\n", ""},
		{"postgres db", "db: postgres://u@h/db\n", ""},
		{"restore window 7", "restore_window_days: 7\n", ""},
		{"restore window 30", "restore_window_days: 30\n", ""},
		{"kek file absolute", "kek_file: /run/secrets/certwright.kek\n", ""},
		{"kek file relative", "kek_file: keys/kek\n", ""},

		{"listen without port", "http_listen: 127.0.0.1\n", "http_listen"},
		{"listen garbage", "https_listen: 'not an address'\n", "https_listen"},
		{"listen too many colons", "https_listen: '::1:8443'\n", "https_listen"},
		{"public url https", "public_http_url: https://pki.example.internal\n", "public_http_url"},
		{"public url with path", "public_http_url: http://pki.example.internal/pki\n", "public_http_url"},
		{"public url with query", "public_http_url: http://pki.example.internal/?a=b\n", "public_http_url"},
		{"public url with fragment", "public_http_url: http://pki.example.internal#x\n", "public_http_url"},
		{"public url with user", "public_http_url: http://user:pw@pki.example.internal\n", "public_http_url"},
		{"public url relative", "public_http_url: pki.example.internal\n", "public_http_url"},
		{"public url without host", "public_http_url: http://:8080\n", "public_http_url"},
		// A wildcard listen address cannot be the URL relying parties fetch.
		{"public url from wildcard listen", "http_listen: ':8080'\n", "public_http_url"},
		{"public url from 0.0.0.0 listen", "http_listen: '0.0.0.0:8080'\n", "public_http_url"},
		{"public url from [::] listen", "http_listen: '[::]:8080'\n", "public_http_url"},
		{"wildcard listen with a public url", "http_listen: '0.0.0.0:8080'\npublic_http_url: http://pki.example.internal:8080\n", ""},
		{"db scheme", "db: mysql://x\n", "db"},
		{"kek file a directory", "kek_file: /run/secrets/\n", "kek_file"},
		{"kek file dot-dot", "kek_file: ../..\n", "kek_file"},
		{"kek file spaces", "kek_file: ' /run/kek'\n", "kek_file"},
		{"restore window too short", "restore_window_days: 6\n", "restore_window_days"},
		{"restore window too long", "restore_window_days: 31\n", "restore_window_days"},
		{"restore window negative", "restore_window_days: -1\n", "restore_window_days"},
		{"tls validity", "tls_validity_days: 398\n", "tls_validity_days"},
		{"body too small", "max_body_bytes: 10\n", "max_body_bytes"},
		{"log level", "log_level: verbose\n", "log_level"},
		{"root key", "init:\n  root_key: rsa-1024\n", "init.root_key"},
		{"issuing key", "init:\n  issuing_key: p521\n", "init.issuing_key"},
		{"issuing outlives root", "init:\n  root_validity_days: 365\n  issuing_validity_days: 365\n", "init.issuing_validity_days"},
		{"console timeouts", "console:\n  idle_timeout: 15m\n  max_age: 8h\n", ""},
		{"console idle too short", "console:\n  idle_timeout: 30s\n", "console.idle_timeout"},
		{"console idle garbage", "console:\n  idle_timeout: soon\n", "console.idle_timeout"},
		{"console max age too long", "console:\n  max_age: 31d\n", "console.max_age"},
		{"console max age under idle", "console:\n  idle_timeout: 2h\n  max_age: 1h\n", "console.max_age"},
		{"audit verify daily", "audit:\n  verify_interval: 24h\n", ""},
		{"audit verify too often", "audit:\n  verify_interval: 30s\n", "audit.verify_interval"},
		{"audit verify too rare", "audit:\n  verify_interval: 8d\n", "audit.verify_interval"},
		{"keys software", "keys:\n  ca_key_provider: software\n", ""},
		{"keys pkcs11", "keys:\n  ca_key_provider: pkcs11\n  pkcs11:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token_label: certwright\n    pin_file: /etc/certwright/pin\n", ""},
		{"keys token configured, software CAs", "keys:\n  pkcs11:\n    module: /m.so\n    token_serial: 1a2b\n    pin_env: HSM_PIN\n", ""},
		{"keys provider unknown", "keys:\n  ca_key_provider: tpm\n", "keys.ca_key_provider"},
		{"keys pkcs11 without token", "keys:\n  ca_key_provider: pkcs11\n", "keys.ca_key_provider"},
		{"keys pkcs11 no module", "keys:\n  pkcs11:\n    token_label: t\n    pin_env: P\n", "keys.pkcs11.module"},
		{"keys pkcs11 relative module", "keys:\n  pkcs11:\n    module: libsofthsm2.so\n    token_label: t\n    pin_env: P\n", "keys.pkcs11.module"},
		{"keys pkcs11 no token", "keys:\n  pkcs11:\n    module: /m.so\n    pin_env: P\n", "keys.pkcs11.token_label"},
		{"keys pkcs11 two tokens", "keys:\n  pkcs11:\n    module: /m.so\n    token_label: t\n    token_serial: s\n    pin_env: P\n", "keys.pkcs11.token_label"},
		{"keys pkcs11 no pin", "keys:\n  pkcs11:\n    module: /m.so\n    token_label: t\n", "keys.pkcs11.pin_file"},
		{"keys pkcs11 two pins", "keys:\n  pkcs11:\n    module: /m.so\n    token_label: t\n    pin_file: f\n    pin_env: P\n", "keys.pkcs11.pin_file"},
		{"kek in the token", "keys:\n  kek_provider: pkcs11\n  pkcs11:\n    module: /m.so\n    token_label: t\n    pin_env: P\n    kek_label: my-kek\n", ""},
		{"kek in a file", "keys:\n  kek_provider: file\n", ""},
		{"kek in the token without a token", "keys:\n  kek_provider: pkcs11\n", "keys.kek_provider"},
		{"kek provider unknown", "keys:\n  kek_provider: tpm\n", "keys.kek_provider"},
		{"kek label with a file kek", "keys:\n  pkcs11:\n    module: /m.so\n    token_label: t\n    pin_env: P\n    kek_label: k\n", "keys.pkcs11.kek_label"},
		{"kek label alone", "keys:\n  pkcs11:\n    kek_label: k\n", "keys.pkcs11.kek_label"},
		{"kek label spaces", "keys:\n  kek_provider: pkcs11\n  pkcs11:\n    module: /m.so\n    token_label: t\n    pin_env: P\n    kek_label: ' k'\n", "keys.pkcs11.kek_label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaulted(t, tt.yaml)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Validate error = %v, want ErrInvalid naming %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error %q does not name field %q", err, tt.field)
			}
		})
	}
}

func TestLoadSave(t *testing.T) {
	t.Parallel()

	t.Run("missing file is not an error", func(t *testing.T) {
		t.Parallel()
		var c config.Config
		if err := c.Load(filepath.Join(t.TempDir(), config.FileName)); err != nil {
			t.Fatalf("Load: %v", err)
		}
	})

	t.Run("oversized file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), config.FileName)
		big := "# " + strings.Repeat("x", config.MaxFileSize) + "\n"
		if err := os.WriteFile(path, []byte(big), 0o600); err != nil {
			t.Fatal(err)
		}
		var c config.Config
		if err := c.Load(path); !errors.Is(err, config.ErrInvalid) {
			t.Fatalf("Load error = %v, want ErrInvalid", err)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		c := config.Config{DataDir: dir, PublicHTTPURL: "http://pki.example.internal:8080", DB: "postgres://u:secret@h/db"}
		c.Defaults()
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, config.FileName)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("config file mode %v, want 0600 (it may hold a database password)", fi.Mode().Perm())
		}
		var back config.Config
		if err := back.Load(path); err != nil {
			t.Fatalf("Load of a saved config: %v", err)
		}
		back.DataDir = dir
		back.Defaults()
		if err := back.Validate(); err != nil {
			t.Fatal(err)
		}
		if back.PublicHTTPURL != c.PublicHTTPURL || back.DB != c.DB || back.Init != c.Init || back.RestoreWindowDays != c.RestoreWindowDays {
			t.Errorf("round trip changed the config:\n got %+v\nwant %+v", back, c)
		}
	})
}

// TestShutdownPauseDefault: replicas (PostgreSQL) pause 5 s by default
// for their load balancer; one SQLite process stops at once.
// TestKEKPath: kek_file is absolute, or relative to the data directory;
// unset, the KEK is DATA/kek, or, sealed by the token, DATA/kek.p11.
func TestKEKPath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ file, provider, want string }{
		{"", "", "/srv/cw/kek"},
		{"", config.KEKProviderFile, "/srv/cw/kek"},
		{"", config.KEKProviderPKCS11, "/srv/cw/kek.p11"},
		{"/run/secrets/kek", "", "/run/secrets/kek"},
		{"/run/secrets/kek.p11", config.KEKProviderPKCS11, "/run/secrets/kek.p11"},
		{"/run/secrets/../kek", "", "/run/kek"},
		{"keys/kek", "", "/srv/cw/keys/kek"},
	} {
		c := config.Config{DataDir: "/srv/cw", KEKFile: tt.file, Keys: config.KeysConfig{KEKProvider: tt.provider}}
		if got := c.KEKPath(); got != filepath.FromSlash(tt.want) {
			t.Errorf("kek_file %q, kek_provider %q: KEKPath %q, want %q", tt.file, tt.provider, got, tt.want)
		}
	}
}

func TestShutdownPauseDefault(t *testing.T) {
	for _, c := range []struct {
		db, delay string
		want      time.Duration
	}{
		{"", "", 0},
		{"sqlite:/x/db", "", 0},
		{"postgres://h/db", "", 5 * time.Second},
		{"postgresql://h/db", "", 5 * time.Second},
		{"postgres://h/db", "0s", 0},
		{"", "2s", 2 * time.Second},
	} {
		cfg := &config.Config{DB: c.db, ShutdownDelay: c.delay}
		if got := cfg.ShutdownPause(); got != c.want {
			t.Errorf("db %q shutdown_delay %q: pause %s, want %s", c.db, c.delay, got, c.want)
		}
	}
}
