package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// minimalConfig is the ten-line configuration the documentation promises.
const minimalConfig = `server: https://127.0.0.1:8443
ca_file: /etc/certwright/root.pem
token_file: /etc/certwright/agent.token
certificates:
  - name: web
    dns_names: [app.internal]
    profile: internal_service
    cert: /etc/app/tls/cert.pem
    key: /etc/app/tls/key.pem
    reload: /usr/local/bin/reload-app
`

func TestConfigMinimalAndDefaults(t *testing.T) {
	t.Parallel()
	if n := strings.Count(minimalConfig, "\n"); n != 10 {
		t.Fatalf("the minimal configuration has %d lines, want 10", n)
	}
	cfg, err := ParseConfig("agent.yaml", "/etc/certwright", []byte(minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.String() != "https://127.0.0.1:8443" || cfg.TokenFile != "/etc/certwright/agent.token" || cfg.CAFile != "/etc/certwright/root.pem" {
		t.Errorf("top level decoded as %+v", cfg)
	}
	if cfg.CheckInterval != time.Hour {
		t.Errorf("check_interval default %s, want 1h", cfg.CheckInterval)
	}
	if len(cfg.Certificates) != 1 {
		t.Fatalf("%d certificates, want 1", len(cfg.Certificates))
	}
	e := cfg.Certificates[0]
	if e.KeyType != pki.ECDSAP256 {
		t.Errorf("key_type default %s, want ecdsa-p256", e.KeyType)
	}
	if e.Mode != (FileModes{Cert: 0o644, Chain: 0o644, Key: 0o600, Bundle: 0o600}) {
		t.Errorf("default modes %+v, want cert/chain 0644 and key/bundle 0600", e.Mode)
	}
	if e.ReloadTimeout != 60*time.Second || e.CheckTimeout != 30*time.Second {
		t.Errorf("timeouts %s/%s, want 60s/30s", e.ReloadTimeout, e.CheckTimeout)
	}
	if e.CheckRevocation != RevocationWarn {
		t.Errorf("check_revocation default %q, want warn", e.CheckRevocation)
	}
	if e.UID != -1 || e.GID != -1 {
		t.Errorf("owner %d:%d without user/group, want -1:-1", e.UID, e.GID)
	}
}

func TestConfigFullEntry(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("agent.yaml", "/srv/agent", []byte(`server: https://pki.example.internal:8443/
token_file: agent.token
check_interval: 15m
state_dir: state
log_level: debug
certificates:
  - name: api
    common_name: API
    dns_names: [API.example.internal, "*.api.example.internal"]
    ip_addresses: [10.0.0.1, "::1"]
    uris: [spiffe://example.internal/api]
    profile: internal_service
    ca: team
    key_type: rsa-3072
    validity_days: 30
    tags: [prod, api]
    owner: team-api
    cert: tls/cert.pem
    chain: tls/chain.pem
    key: tls/key.pem
    bundle: tls/bundle.pem
    user: "0"
    group: "0"
    mode: {cert: "0640", chain: "0o644", key: "0640", bundle: "0600"}
    reload_argv: [/bin/true, --quiet]
    reload_timeout: 10s
    check: 127.0.0.1:8443
    check_timeout: 5s
    check_revocation: require
    renew_before: 20d
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.String() != "https://pki.example.internal:8443" {
		t.Errorf("server %s: the trailing slash should go", cfg.Server)
	}
	if cfg.TokenFile != "/srv/agent/agent.token" || cfg.StateDir != "/srv/agent/state" {
		t.Errorf("relative paths not resolved against the config's directory: %s, %s", cfg.TokenFile, cfg.StateDir)
	}
	e := cfg.Certificates[0]
	if e.DNSNames[0] != "api.example.internal" || len(e.IPAddresses) != 2 || e.URIs[0].String() != "spiffe://example.internal/api" {
		t.Errorf("names decoded as %v %v %v", e.DNSNames, e.IPAddresses, e.URIs)
	}
	if e.KeyType != pki.RSA3072 || e.ValidityDays != 30 || e.CA != "team" || e.Owner != "team-api" || len(e.Tags) != 2 {
		t.Errorf("entry decoded as %+v", e)
	}
	if e.Mode != (FileModes{Cert: 0o640, Chain: 0o644, Key: 0o640, Bundle: 0o600}) {
		t.Errorf("modes %+v", e.Mode)
	}
	if e.Bundle != "/srv/agent/tls/bundle.pem" || e.UID != 0 || e.GID != 0 {
		t.Errorf("bundle %s owner %d:%d", e.Bundle, e.UID, e.GID)
	}
	if e.RenewBefore != 20*24*time.Hour || e.CheckTimeout != 5*time.Second || e.ReloadTimeout != 10*time.Second || len(e.ReloadArgv) != 2 ||
		e.CheckRevocation != RevocationRequire {
		t.Errorf("durations/reload decoded as %+v", e)
	}
}

// TestConfigErrors checks that each mistake is reported with the file,
// the line, the field and what is wrong.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want string // the whole first line of the error
	}{
		{"bad key_type", minimalConfig + "    key_type: ecdsa-p521\n",
			`agent.yaml:11: certificates[0].key_type: "ecdsa-p521" is not one of ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096`},
		{"unknown field", strings.Replace(minimalConfig, "    profile:", "    dns_name: [x]\n    profile:", 1),
			`agent.yaml:7: certificates[0].dns_name: unknown field (known fields: bundle, ca, cert, chain, check, check_revocation, check_timeout, common_name, dns_names, group, ip_addresses, key, key_type, mode, name, owner, profile, reload, reload_argv, reload_timeout, renew_before, tags, uris, user, validity_days)`},
		{"unknown top-level field", "servr: https://x\n" + minimalConfig[strings.Index(minimalConfig, "\n")+1:],
			`agent.yaml:1: servr: unknown field (known fields: ca_file, certificates, check_interval, client_cert, client_key, client_profile, log_level, server, state_dir, token_file)`},
		{"missing paths", strings.NewReplacer("    cert: /etc/app/tls/cert.pem\n", "", "    key: /etc/app/tls/key.pem\n", "").Replace(minimalConfig),
			`agent.yaml:5: certificates[0]: no files to write: set cert and key, or bundle`},
		{"cert without key", strings.Replace(minimalConfig, "    key: /etc/app/tls/key.pem\n", "", 1),
			`agent.yaml:8: certificates[0].key: is required with cert (or use bundle): where to write the private key`},
		{"key mode 0644 refused", minimalConfig + "    mode: {key: \"0644\"}\n",
			`agent.yaml:11: certificates[0].mode.key: 0644 lets every user on the host read or change the private key: use 0600 or 0640 with group`},
		{"bundle mode 0604 refused", minimalConfig + "    bundle: /etc/app/tls/all.pem\n    mode:\n      bundle: 0604\n",
			`agent.yaml:13: certificates[0].mode.bundle: 0604 lets every user on the host read or change the private key: use 0600 or 0640 with group`},
		{"mode not octal", minimalConfig + "    mode: {cert: \"0999\"}\n",
			`agent.yaml:11: certificates[0].mode.cert: "0999" is not an octal file mode such as 0640`},
		{"duplicate name", minimalConfig + "  - name: web\n    dns_names: [b.internal]\n    profile: p\n    bundle: /b.pem\n",
			`agent.yaml:11: certificates[1].name: "web" is already the name of the entry on line 5`},
		{"duplicate path", minimalConfig + "  - name: other\n    dns_names: [b.internal]\n    profile: p\n    bundle: /etc/app/tls/key.pem\n",
			`agent.yaml:14: certificates[1].bundle: /etc/app/tls/key.pem is already used on line 9: every file must have one use`},
		{"field twice", strings.Replace(minimalConfig, "    reload:", "    profile: again\n    reload:", 1),
			`agent.yaml:10: certificates[0].profile: given twice (first on line 7)`},
		{"http server", strings.Replace(minimalConfig, "https://", "http://", 1),
			`agent.yaml:1: server: "http://127.0.0.1:8443": want an https:// URL (the token must not cross the network in clear)`},
		{"no server", minimalConfig[strings.Index(minimalConfig, "\n")+1:],
			`agent.yaml:1: server: is required: the Certwright server's URL, e.g. https://pki.example.internal:8443`},
		{"token and client cert", minimalConfig + "client_cert: c.pem\nclient_key: k.pem\n",
			`agent.yaml:3: token_file: set token_file or client_cert and client_key, not both`},
		{"no names", strings.Replace(minimalConfig, "    dns_names: [app.internal]\n", "", 1),
			`agent.yaml:5: certificates[0].dns_names: is required: the certificate needs at least one of dns_names, ip_addresses or uris`},
		{"bad IP", strings.Replace(minimalConfig, "    dns_names: [app.internal]\n", "    ip_addresses: [10.0.0.256]\n", 1),
			`agent.yaml:6: certificates[0].ip_addresses[0]: "10.0.0.256" is not an IP address`},
		{"bad DNS name", strings.Replace(minimalConfig, "app.internal", "app internal", 1),
			`agent.yaml:6: certificates[0].dns_names[0]: "app internal" is not a DNS name`},
		{"names not a list", strings.Replace(minimalConfig, "[app.internal]", "app.internal", 1),
			`agent.yaml:6: certificates[0].dns_names: want a list such as [a, b], got "app.internal"`},
		{"reload and reload_argv", minimalConfig + "    reload_argv: [/bin/true]\n",
			`agent.yaml:11: certificates[0].reload_argv: set reload or reload_argv, not both`},
		{"bad check", minimalConfig + "    check: localhost\n",
			`agent.yaml:11: certificates[0].check: "localhost": want host:port, e.g. 127.0.0.1:443`},
		{"bad check_revocation", minimalConfig + "    check: 127.0.0.1:443\n    check_revocation: strict\n",
			`agent.yaml:12: certificates[0].check_revocation: "strict": want warn (the default), require or off`},
		{"check_revocation without check", minimalConfig + "    check_revocation: require\n",
			`agent.yaml:11: certificates[0].check_revocation: only applies with check`},
		{"bad duration", minimalConfig + "    renew_before: soon\n",
			`agent.yaml:11: certificates[0].renew_before: "soon" is not a duration like 30d, 2w or 12h`},
		{"bad validity", minimalConfig + "    validity_days: -3\n",
			`agent.yaml:11: certificates[0].validity_days: want a positive whole number, got "-3"`},
		{"alias", "x: &a 1\n" + minimalConfig,
			`agent.yaml:1: x: unknown field (known fields: ca_file, certificates, check_interval, client_cert, client_key, client_profile, log_level, server, state_dir, token_file)`},
		{"anchor on a value", strings.Replace(minimalConfig, "profile: internal_service", "profile: &p internal_service", 1),
			`agent.yaml:7: certificates[0].profile: YAML anchors and aliases are not supported: write the value out`},
		{"bad log level", minimalConfig + "log_level: loud\n",
			`agent.yaml:11: log_level: "loud" is not one of debug, info, warn, error`},
		{"check_interval too short", minimalConfig + "check_interval: 10ms\n",
			`agent.yaml:11: check_interval: 10ms is shorter than the minimum of 1s`},
		{"unknown user", minimalConfig + "    user: no-such-user-certwright\n",
			`agent.yaml:11: certificates[0].user: no user "no-such-user-certwright" on this host`},
		{"certificates not a list", "server: https://x\ntoken_file: /t\ncertificates: {}\n",
			`agent.yaml:3: certificates: want a list of certificates, got a mapping`},
		{"empty file", "", `agent.yaml: the file is empty: it needs at least server, token_file (or client_cert and client_key) and certificates`},
		{"two documents", minimalConfig + "---\nserver: x\n", `agent.yaml:11: a second YAML document: the file must hold one`},
		{"not YAML", "server: [\n", `agent.yaml:1: not valid YAML: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseConfig("agent.yaml", "/etc/certwright", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.yaml)
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			if first != tt.want {
				t.Errorf("error\n  %s\nwant\n  %s", first, tt.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *ConfigError", err)
			}
		})
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := ParseConfig("agent.yaml", "/", []byte(minimalConfig+"    key_type: dsa\n    mode: {key: \"0666\"}\n    colour: blue\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"agent.yaml:11: certificates[0].key_type", "agent.yaml:12: certificates[0].mode.key", "agent.yaml:13: certificates[0].colour"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
}

func TestLoadConfigFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(minimalConfig, "/etc/app/tls/key.pem", "key.pem", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Certificates[0].Key; got != filepath.Join(dir, "key.pem") {
		t.Errorf("relative key path resolved to %s, want it beside the config file", got)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxConfigSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v, want a size error", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalConfig))
	f.Add([]byte("server: [\n"))
	f.Add([]byte("certificates:\n  - mode: {key: 0777}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yaml", "/", data)
		if err == nil && (cfg.Server == nil || cfg.Server.Scheme != "https") {
			t.Fatalf("accepted a configuration without an https server: %q", data)
		}
		if err == nil {
			for _, e := range cfg.Certificates {
				if e.Mode.Key&0o007 != 0 || e.Mode.Bundle&0o007 != 0 {
					t.Fatalf("accepted a key mode open to others: %q", data)
				}
			}
		}
	})
}
