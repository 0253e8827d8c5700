package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
)

// TestDecodeNamesLineAndKnownKeys: every error of the file names the file,
// the line and the key; an unknown key lists the valid keys at its level;
// a value of the wrong kind is described in the file's words, never as a
// Go type.
func TestDecodeNamesLineAndKnownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       string // the whole first line of the error
	}{
		{"unknown top-level key", "log_level: info\nlisten: x\n",
			"config: invalid configuration: c.yaml:2: listen: unknown field (known fields: acme, alerts, approval, audit, auth, console, db, default_ca, http_listen, https_listen, init, kek_file, keys, lifecycle, log_level, max_body_bytes, metrics, public_http_url, replica_name, restore_window_days, revocation, scan, shutdown_delay, store_timeout, tls_names, tls_validity_days)"},
		{"unknown nested key", "metrics:\n  max_certificates: 5\n  lisen: 127.0.0.1:9464\n",
			"config: invalid configuration: c.yaml:3: metrics.lisen: unknown field (known fields: listen, max_certificates, token_file)"},
		{"unknown key in a list item", "alerts:\n  channels:\n    - name: a\n      type: webhook\n      uri: https://x\n",
			"config: invalid configuration: c.yaml:5: alerts.channels[0].uri: unknown field (known fields: ca_file, from, headers, name, password_file, secret_file, smtp, timeout, tls, to, type, url, username)"},
		{"text for a number", "acme:\n  workers: eight\n", `config: invalid configuration: c.yaml:2: acme.workers: want a whole number, got "eight"`},
		{"number too large", "max_body_bytes: 9223372036854775808\n", `config: invalid configuration: c.yaml:1: max_body_bytes: want a whole number, got "9223372036854775808", which is out of range`},
		{"list for text", "http_listen: [a, b]\n", "config: invalid configuration: c.yaml:1: http_listen: want a text value, got a list"},
		{"text for a list", "tls_names: localhost\n", `config: invalid configuration: c.yaml:1: tls_names: want a list such as [a, b], got "localhost"`},
		{"mapping for a number", "audit:\n  unauthenticated_per_second: {a: 1}\n", "config: invalid configuration: c.yaml:2: audit.unauthenticated_per_second: want a number, got a mapping"},
		{"key twice", "log_level: info\nlog_level: debug\n", "config: invalid configuration: c.yaml:2: log_level: given twice (first on line 1)"},
		{"anchor", "init:\n  root_name: &r root\n", "config: invalid configuration: c.yaml:2: init.root_name: YAML anchors and aliases are not supported: write the value out"},
		{"broken YAML", "acme:\n  workers: [\n", "config: invalid configuration: c.yaml:2: not valid YAML: did not find expected node content"},
		{"two documents", "log_level: info\n---\nlog_level: debug\n", "config: invalid configuration: c.yaml:2: a second YAML document: the file must hold one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c config.Config
			err := c.Decode([]byte(tt.yaml), "c.yaml")
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Decode(%q) = %v, want ErrInvalid", tt.yaml, err)
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			if first != tt.want {
				t.Errorf("error\n  %s\nwant\n  %s", first, tt.want)
			}
			if strings.Contains(first, "!!") || strings.Contains(first, "unmarshal") || strings.Contains(first, " into ") {
				t.Errorf("error speaks of YAML tags or Go types: %s", first)
			}
		})
	}
}

// TestDecodeReportsEveryProblemInOrder lists all mistakes of one file, by line.
func TestDecodeReportsEveryProblemInOrder(t *testing.T) {
	t.Parallel()
	var c config.Config
	err := c.Decode([]byte("acme:\n  workrs: 3\n  orders_per_hour: many\nhttp_listen: [a]\n"), "c.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{"c.yaml:2: acme.workrs: unknown field", "c.yaml:3: acme.orders_per_hour:", "c.yaml:4: http_listen:"}
	if len(got) != len(want) {
		t.Fatalf("%d problems reported, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("problem %d = %q, want it to hold %q", i+1, got[i], w)
		}
	}
}

// TestValidateNamesLine: a value the rules refuse is reported at the line
// it was written on, with the key and the accepted values.
func TestValidateNamesLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	body := "log_level: info\nlifecycle:\n  delivery_attempts: 500\nalerts:\n  channels:\n    - name: hook\n      type: webhook\n      url: ftp://x\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.ReadFile(path, t.TempDir())
	want := path + ":3: lifecycle.delivery_attempts: 500: want 1 to 100"
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("ReadFile error = %v, want %q", err, want)
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Line != 3 || fe.Field != "lifecycle.delivery_attempts" {
		t.Errorf("FieldError = %+v", fe)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(body, "500", "5", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.ReadFile(path, t.TempDir())
	if want := path + ":8: alerts.channels[0].url:"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadFile error = %v, want %q", err, want)
	}
	if _, err := config.ReadFile(filepath.Join(t.TempDir(), "none.yaml"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// TestSettingsKeys: the flattened settings use the file's keys, so a
// change is reported under the key the operator wrote.
func TestSettingsKeys(t *testing.T) {
	t.Parallel()
	c := defaulted(t, "acme:\n  deny_validation: [10.0.0.0/8]\nalerts:\n  channels:\n    - {name: hook, type: webhook, url: 'https://x', headers: {Authorization: b}}\n")
	s := c.Settings()
	for key, want := range map[string]string{
		"acme.deny_validation":       "[10.0.0.0/8]",
		"alerts.channels[0].url":     "https://x",
		"alerts.channels[0].headers": "{Authorization: b}",
		"log_level":                  "info",
		"revocation.crl_lifetime":    "7d",
	} {
		if s[key] != want {
			t.Errorf("Settings()[%q] = %q, want %q", key, s[key], want)
		}
	}
	if _, ok := s["data_dir"]; ok {
		t.Error("data_dir is not a file setting")
	}
}

// FuzzDecode: no input panics the decoder; every refusal matches
// ErrInvalid and speaks of keys and values, never of Go types; what is
// accepted can be defaulted and flattened.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "log_level: debug\n", "acme:\n  workers: 3\n  deny_validation: [10.0.0.0/8]\n",
		"alerts:\n  channels:\n    - {name: a, type: webhook, url: 'https://x', headers: {A: b}}\n",
		"max_body_bytes: 9223372036854775808\n", "x: &a 1\ny: *a\n", "- a\n", "tls_names: [a, [b]]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c config.Config
		err := c.Decode(b, "f.yaml")
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			if msg := err.Error(); strings.Contains(msg, "unmarshal") || strings.Contains(msg, " into ") {
				t.Fatalf("error speaks of Go types: %v", err)
			}
			return
		}
		c.Defaults()
		_ = c.Validate()
		_ = c.Settings()
	})
}

// TestSettingsEmptyIsUnset: empty lists and mappings read as unset, so an
// added alert channel reports only the fields it sets.
func TestSettingsEmptyIsUnset(t *testing.T) {
	t.Parallel()
	c := defaulted(t, "alerts:\n  channels:\n    - {name: hook, type: webhook, url: 'https://x'}\n")
	s := c.Settings()
	for _, key := range []string{"alerts.channels[0].headers", "alerts.channels[0].to", "alerts.routes", "acme.deny_validation"} {
		if s[key] != "" {
			t.Errorf("Settings()[%q] = %q, want empty", key, s[key])
		}
	}
}
