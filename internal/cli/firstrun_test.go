package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/config"
)

func TestAskIdentity(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		given   config.Config // what flags or the file set
		input   string
		wantOrg string
		wantURL string
		wantErr error
		// asked is every question expected in the output; notAsked none of them.
		asked    []string
		notAsked []string
	}{
		{name: "enter keeps the defaults", input: "\n\n", wantOrg: "Certwright", wantURL: "http://127.0.0.1:8080",
			asked: []string{"Organisation name", "[Certwright]", "Public URL", "[http://127.0.0.1:8080]"}},
		{name: "answers", input: "  Example Corp \nhttp://pki.example.internal:8080/\n", wantOrg: "Example Corp", wantURL: "http://pki.example.internal:8080"},
		{name: "default URL follows http_listen", given: config.Config{HTTPListen: "10.0.0.5:80"}, input: "\n\n",
			wantOrg: "Certwright", wantURL: "http://10.0.0.5:80", asked: []string{"[http://10.0.0.5:80]"}},
		{name: "bad URL asked again", input: "Example\nhttps://pki.example.internal\nhttp://pki.example.internal\n",
			wantOrg: "Example", wantURL: "http://pki.example.internal", asked: []string{"must be http://host[:port]"}},
		{name: "three bad answers", input: "Example\nftp://a\nnot a url\nhttp://\n", wantErr: config.ErrInvalid},
		{name: "input ends", input: "Example\n", wantErr: errNoAnswer},
		{name: "long answer", input: strings.Repeat("x", maxAnswer+1) + "\n"},
		{name: "flags given: nothing asked", given: config.Config{PublicHTTPURL: "http://pki.example.internal", Init: config.InitConfig{Organization: "Example"}},
			wantOrg: "Example", wantURL: "http://pki.example.internal", notAsked: []string{"Organisation", "Public URL", "Setting up"}},
		{name: "only the missing one asked", given: config.Config{Init: config.InitConfig{Organization: "Example"}}, input: "\n",
			wantOrg: "Example", wantURL: "http://127.0.0.1:8080", asked: []string{"Public URL"}, notAsked: []string{"Organisation"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := c.given
			cfg.DataDir = "certwright-data"
			var out bytes.Buffer
			err := askIdentity(context.Background(), strings.NewReader(c.input), &out, &cfg)
			if c.wantErr == nil && c.wantOrg == "" {
				if err == nil {
					t.Fatalf("no error; output:\n%s", out.String())
				}
				return
			}
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("askIdentity: %v\n%s", err, out.String())
			}
			if cfg.Init.Organization != c.wantOrg || cfg.PublicHTTPURL != c.wantURL {
				t.Errorf("got org %q url %q, want %q %q", cfg.Init.Organization, cfg.PublicHTTPURL, c.wantOrg, c.wantURL)
			}
			for _, s := range c.asked {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range c.notAsked {
				if strings.Contains(out.String(), s) {
					t.Errorf("output has %q:\n%s", s, out.String())
				}
			}
		})
	}
}

// TestAskIdentityInterrupted: Ctrl-C (the context ending) stops a question
// that waits for an answer.
func TestAskIdentityInterrupted(t *testing.T) {
	t.Parallel()
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := config.Config{DataDir: "certwright-data"}
	if err := askIdentity(ctx, r, io.Discard, &cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestInitNeverPromptsWithoutTerminal: stdin from /dev/null or a pipe is
// not a terminal, so init asks nothing and goes on with the defaults.
func TestInitNeverPromptsWithoutTerminal(t *testing.T) {
	t.Parallel()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) || isTerminal(strings.NewReader("")) || isTerminal(nil) {
		t.Fatal("isTerminal is true for /dev/null, a reader or nil")
	}
	dir := filepath.Join(t.TempDir(), "data")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"init", "--data-dir", dir, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"},
		devNull, &out, &errb, func(string) string { return "" })
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, s := range []string{"Organisation", "Public URL", "Setting up"} {
		if strings.Contains(out.String()+errb.String(), s) {
			t.Errorf("init without a terminal printed %q", s)
		}
	}
	var cfg config.Config
	if err := cfg.Load(filepath.Join(dir, config.FileName)); err != nil {
		t.Fatal(err)
	}
	if cfg.Init.Organization != "Certwright" || cfg.PublicHTTPURL != "http://127.0.0.1:0" {
		t.Errorf("config.yaml: organization %q, public_http_url %q; want the defaults", cfg.Init.Organization, cfg.PublicHTTPURL)
	}
}

// TestInitSettingsPersist: what init is given lands in DATA/config.yaml
// (0600), where a later plain serve reads it.
func TestInitSettingsPersist(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := run(t, nil, "init", "--data-dir", dir, "--org", "Example", "--public-http-url", "http://pki.example.internal:8080",
		"--tls-names", "pki.example.internal, localhost", "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	path := filepath.Join(dir, config.FileName)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.yaml: %v %v, want mode 0600", fi, err)
	}
	// serve's flag parsing, as "certwright serve --data-dir DIR" does it.
	var errb bytes.Buffer
	cfg, err := parseServerFlags("serve", []string{"--data-dir", dir}, &errb, func(string) string { return "" }, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Init.Organization != "Example" || cfg.PublicHTTPURL != "http://pki.example.internal:8080" ||
		strings.Join(cfg.TLSNames, ",") != "pki.example.internal,localhost" || cfg.HTTPSListen != "127.0.0.1:0" {
		t.Errorf("serve reads org %q, url %q, names %v, https %q", cfg.Init.Organization, cfg.PublicHTTPURL, cfg.TLSNames, cfg.HTTPSListen)
	}
	for _, bad := range [][]string{
		{"--tls-names", "bad name"},
		{"--public-http-url", "https://pki.example.internal"},
		{"--org", strings.Repeat("x", config.MaxOrganization+1)},
	} {
		d := filepath.Join(t.TempDir(), "data")
		code, _, errOut := run(t, nil, append([]string{"init", "--data-dir", d}, bad...)...)
		if code == 0 || !strings.Contains(errOut, strings.TrimPrefix(bad[0], "--")[:3]) {
			t.Errorf("init %v: exit %d, %s", bad, code, errOut)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("init %v left %s behind", bad, d)
		}
	}
}

func TestPrintBanner(t *testing.T) {
	t.Parallel()
	b := banner{
		dataDir: "certwright-data", store: "PostgreSQL postgres://cw:xxxxx@db/pki", httpsURL: "https://127.0.0.1:8443",
		httpURL: "http://127.0.0.1:8080", fingerprint: "AB:CD", token: "certwright-data/admin.token",
		acme: []string{"https://127.0.0.1:8443/acme/default/directory"},
	}
	var real, trial bytes.Buffer
	printBanner(&real, b)
	b.trial = true
	printBanner(&trial, b)
	for _, want := range []string{"store:                       PostgreSQL postgres://cw:xxxxx@db/pki", "ACME directory:              https://127.0.0.1:8443/acme/default/directory"} {
		if !strings.Contains(real.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, real.String())
		}
	}
	if strings.Contains(real.String(), "trial") {
		t.Errorf("banner of a configured CA mentions a trial:\n%s", real.String())
	}
	if !strings.Contains(trial.String(), "This is a local trial CA") || !strings.Contains(trial.String(), "certwright init --data-dir DIR --org NAME --public-http-url") {
		t.Errorf("trial banner lacks the trial line:\n%s", trial.String())
	}
	b.acme = nil
	var none bytes.Buffer
	printBanner(&none, b)
	if !strings.Contains(none.String(), "ACME directory:              none") {
		t.Errorf("banner without provisioners:\n%s", none.String())
	}
}

func TestReadBuildVersion(t *testing.T) {
	t.Parallel()
	v := readBuildVersion(&debug.BuildInfo{
		GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}},
	}, true)
	var out bytes.Buffer
	v.print(&out)
	want := "certwright v1.2.3\n  commit: abc123 (with uncommitted changes) 2026-12-01T10:00:00Z\n  go:     go1.26.0\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if v := readBuildVersion(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true); v.Version != version || v.Commit != "unknown" {
		t.Errorf("devel build: %+v", v)
	}
	if v := readBuildVersion(nil, false); v.Version != version || v.GoVersion != "unknown" {
		t.Errorf("no build info: %+v", v)
	}
}
