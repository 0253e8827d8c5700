package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"github.com/certwright/certwright/internal/inventory"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// run calls Main in-process with a private environment.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestReorderArgs(t *testing.T) {
	t.Parallel()
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Bool("json", false, "")
		fs.Bool("chain", false, "")
		fs.String("purpose", "", "")
		fs.String("host", "", "")
		fs.Int("path-len", 0, "")
		return fs
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"flag after positional", []string{"SERIAL", "--json"}, []string{"--json", "--", "SERIAL"}},
		{"values stay with their flag", []string{"app.pem", "--purpose", "server", "--host", "x"},
			[]string{"--purpose", "server", "--host", "x", "--", "app.pem"}},
		{"bool flag does not eat the next arg", []string{"--chain", "SERIAL"}, []string{"--chain", "--", "SERIAL"}},
		{"equals form", []string{"a", "--host=x", "b"}, []string{"--host=x", "--", "a", "b"}},
		{"bool with explicit value", []string{"--json=false", "a"}, []string{"--json=false", "--", "a"}},
		{"negative value", []string{"--path-len", "-1", "NAME"}, []string{"--path-len", "-1", "--", "NAME"}},
		{"single dash", []string{"a", "-host", "x"}, []string{"-host", "x", "--", "a"}},
		{"double dash ends flags", []string{"--json", "--", "--not-a-flag"}, []string{"--json", "--", "--not-a-flag"}},
		{"stdin dash is positional", []string{"-", "--json"}, []string{"--json", "--", "-"}},
		{"unknown flag kept as flag", []string{"a", "--bogus", "b"}, []string{"--bogus", "--", "a", "b"}},
		{"value flag at the end", []string{"a", "--host"}, []string{"--host", "--", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := reorderArgs(newFS(), tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReorderedParse(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	purpose := fs.String("purpose", "", "")
	host := fs.String("host", "", "")
	js := fs.Bool("json", false, "")
	if err := fs.Parse(reorderArgs(fs, []string{"app.pem", "--purpose", "server", "--json", "--host", "x"})); err != nil {
		t.Fatal(err)
	}
	if *purpose != "server" || *host != "x" || !*js || !slices.Equal(fs.Args(), []string{"app.pem"}) {
		t.Errorf("got purpose=%q host=%q json=%v args=%q", *purpose, *host, *js, fs.Args())
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"30d", 30 * day},
		{"400d", 400 * day},
		{"2w", 14 * day},
		{"12h", 12 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{" 7d ", 7 * day},
	}
	for _, tt := range good {
		got, err := inventory.ParseWindow(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("inventory.ParseWindow(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "d", "abc", "-5d", "0d", "0", "1.5d", "5x", "30 d", "-2h", "99999999999d", "2w3d"} {
		if got, err := inventory.ParseWindow(in); err == nil {
			t.Errorf("inventory.ParseWindow(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "30d") {
			t.Errorf("inventory.ParseWindow(%q) error %q does not show an example", in, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		30 * 24 * time.Hour: "30d",
		14 * 24 * time.Hour: "14d",
		12 * time.Hour:      "12h0m0s",
	} {
		if got := inventory.FormatWindow(d); got != want {
			t.Errorf("inventory.FormatWindow(%v) = %q, want %q", d, got, want)
		}
		// The server parses what the client sends.
		if back, err := inventory.ParseWindow(inventory.FormatWindow(d)); err != nil || back != d {
			t.Errorf("round trip of %v: %v, %v", d, back, err)
		}
	}
}

// leafPaths lists the command path of every leaf and group in the table.
func allPaths() (leaves, groups [][]string) {
	var walk func(c *command, p []string)
	walk = func(c *command, p []string) {
		if c.sub == nil {
			leaves = append(leaves, p)
			return
		}
		groups = append(groups, p)
		for _, s := range c.sub {
			walk(s, append(slices.Clone(p), s.name))
		}
	}
	walk(commandTree(), nil)
	return leaves, groups
}

func TestHelpForEveryCommand(t *testing.T) {
	t.Parallel()
	leaves, groups := allPaths()
	if len(leaves) < 25 {
		t.Fatalf("only %d commands in the table", len(leaves))
	}
	for _, p := range leaves {
		for _, h := range []string{"--help", "-h"} {
			args := append(slices.Clone(p), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				code, out, errOut := run(t, nil, args...)
				if code != 0 {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				for _, want := range []string{"Usage: certwright " + strings.Join(p, " "), "Example:", "certwright " + p[0]} {
					if !strings.Contains(out, want) {
						t.Errorf("help lacks %q:\n%s", want, out)
					}
				}
			})
		}
		// "help X Y" is "X Y --help".
		code, out, _ := run(t, nil, append([]string{"help"}, p...)...)
		if code != 0 || !strings.Contains(out, "Example:") {
			t.Errorf("certwright help %s: exit %d\n%s", strings.Join(p, " "), code, out)
		}
	}
	for _, p := range groups {
		for _, args := range [][]string{p, append(slices.Clone(p), "--help"), append([]string{"help"}, p...)} {
			code, out, errOut := run(t, nil, args...)
			if code != 0 {
				t.Errorf("certwright %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
			}
			// A group's help shows an example for each of its commands.
			for _, leaf := range leaves {
				if len(leaf) > len(p) && slices.Equal(leaf[:len(p)], p) && !strings.Contains(out, "$ certwright "+strings.Join(leaf, " ")) {
					t.Errorf("certwright %s: no example for %s:\n%s", strings.Join(args, " "), strings.Join(leaf, " "), out)
				}
			}
		}
	}
}

func TestClientFlagsInHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, nil, "cert", "show", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--data-dir DIR", "--server URL", "--token-file FILE", "--ca-file FILE", "--json", "CERTWRIGHT_TOKEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

// checkUsageError checks that stderr is a usage error holding want and a
// hint: "certwright: ..." and "hint: ..." lines, or with --json one JSON
// object {"error": {...}} with exit_code 2.
func checkUsageError(t *testing.T, args []string, stderr, want string) {
	t.Helper()
	if !wantsJSON(args) {
		if !strings.HasPrefix(stderr, "certwright: ") || !strings.Contains(stderr, "\nhint: ") || !strings.Contains(stderr, want) {
			t.Errorf("stderr %q, want a one-line error with %q and a hint", stderr, want)
		}
		return
	}
	var e struct{ Error errorJSON }
	if err := json.Unmarshal([]byte(stderr), &e); err != nil {
		t.Fatalf("stderr under --json is not one JSON object: %v\n%s", err, stderr)
	}
	if !strings.Contains(e.Error.Message+" "+e.Error.Hint, want) || e.Error.Hint == "" || e.Error.Exit != exitUsage {
		t.Errorf("stderr %s: want an error with %q, a hint and exit_code 2", stderr, want)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"bogus"}, []string{`unknown command "bogus"`, "hint: "}},
		{[]string{"ca", "bogus"}, []string{`unknown command "ca bogus"`, "certwright ca --help"}},
		{[]string{"ca", "list", "--bogus"}, []string{"unknown flag --bogus", "certwright ca list --help"}},
		{[]string{"crt", "list"}, []string{`unknown command "crt"`, `did you mean "cert"? valid: init, serve, ca, cert,`}},
		{[]string{"cert", "lsit"}, []string{`unknown command "cert lsit"`, `did you mean "list"?`, "valid: sign, issue, list,"}},
		{[]string{"cert", "list", "--limt", "5"}, []string{"unknown flag --limt", "did you mean --limit?", "its own flags: --after, --all, --ca,"}},
		{[]string{"cert", "list", "--json", "--expirng-within", "5d"}, []string{"did you mean --expiring-within?"}},
		{[]string{"help", "cert", "shwo"}, []string{`did you mean "show"?`}},
		{[]string{"--bogus", "ca", "list"}, []string{"unknown flag --bogus before the command", "--context", "--json"}},
		{[]string{"ca", "--status", "valid", "list"}, []string{"unknown flag --status before the command"}},
		{[]string{"--server"}, []string{"flag --server needs a value"}},
		{[]string{"ca", "show"}, []string{"missing NAME"}},
		{[]string{"ca", "show", "a", "b"}, []string{`unexpected argument "b"`}},
		{[]string{"cert", "sign", "--profile", "web_server"}, []string{"--csr is required"}},
		{[]string{"cert", "issue", "--profile", "p", "--cn", "x"}, []string{"--key-out or --p12-out is required"}},
		{[]string{"cert", "issue", "--profile", "p", "--cn", "x", "--key-out", "k", "--p12-out", "p"}, []string{"exclude each other"}},
		{[]string{"cert", "issue", "--profile", "p", "--cn", "x", "--key", "rsa-512", "--key-out", "k"}, []string{"unknown key algorithm"}},
		{[]string{"cert", "list", "--expiring-within", "soon"}, []string{`"soon" is not a duration`}},
		{[]string{"cert", "show", "not-hex"}, []string{"serial"}},
		{[]string{"ca", "create-root", "--name", "r"}, []string{"--cn is required"}},
		{[]string{"ca", "create-root", "--name", "r", "--cn", "R", "--key-provider", "tpm"}, []string{`--key-provider "tpm": want software or pkcs11`}},
		{[]string{"ca", "create-external", "--name", "x", "--cn", "X", "--key-provider", "hsm"}, []string{`--key-provider "hsm"`}},
		{[]string{"verify", "x.pem", "--purpose", "email"}, []string{"--purpose"}},
		{[]string{"help", "nope"}, []string{`unknown command "nope"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, nil, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			for _, w := range tt.want {
				checkUsageError(t, tt.args, errOut, w)
			}
		})
	}
}

func TestBareAndVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, nil)
	if code != 0 || !strings.Contains(out, "Usage: certwright <command>") || !strings.Contains(out, "Example") && !strings.Contains(out, "$ certwright") {
		t.Errorf("bare certwright: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ = run(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "certwright "+version+"\n") || !strings.Contains(out, "commit: ") ||
			!strings.Contains(out, "go:     "+runtime.Version()) {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

func TestDiscoveryErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	missing := filepath.Join(empty, "nope")
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "server.json"), []byte(`{"url":"https://127.0.0.1:1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badJSON := t.TempDir()
	if err := os.WriteFile(filepath.Join(badJSON, "server.json"), []byte(`not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"empty data dir", nil, []string{"ca", "list", "--data-dir", empty},
			[]string{"cannot find the server", empty, "no server.json", "hint: is `certwright serve` running"}},
		{"missing data dir from env", map[string]string{"CERTWRIGHT_DATA_DIR": missing}, []string{"cert", "list"},
			[]string{missing, "does not exist", "--server/--token-file/--ca-file"}},
		{"only server.json", nil, []string{"profile", "list", "--data-dir", partial},
			[]string{"cannot find the API token", "root certificate", "hint: "}},
		{"bad server.json", nil, []string{"ca", "list", "--data-dir", badJSON},
			[]string{"server.json", `{"url"`}},
		{"token file missing", map[string]string{"CERTWRIGHT_SERVER": "https://127.0.0.1:1"},
			[]string{"ca", "list", "--data-dir", empty, "--token-file", filepath.Join(empty, "tok")},
			[]string{"read token"}},
		{"http server refused", map[string]string{"CERTWRIGHT_TOKEN": "t", "CERTWRIGHT_SERVER": "http://127.0.0.1:1"},
			[]string{"ca", "list", "--data-dir", partial, "--ca-file", writeTestRoot(t)},
			[]string{"only served over https"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := run(t, tt.env, tt.args...)
			if code != exitError {
				t.Errorf("exit %d, want 1; stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

func TestProfileContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, data, want string
	}{
		{"p.json", "name: x", "application/json"},
		{"p.YAML", "{}", "application/yaml"},
		{"p.yml", "", "application/yaml"},
		{"-", "  {\"name\":\"x\"}", "application/json"},
		{"profile", "name: x\n", "application/yaml"},
	}
	for _, tt := range tests {
		if got := profileContentType(tt.path, []byte(tt.data)); got != tt.want {
			t.Errorf("profileContentType(%q, %q) = %q, want %q", tt.path, tt.data, got, tt.want)
		}
	}
}

func TestProfileYAMLOrder(t *testing.T) {
	t.Parallel()
	p := map[string]any{
		"builtin": true, "zeta": "last", "ext_key_usage": []any{"server_auth"},
		"max_validity_days": float64(365), "name": "web", "description": "d",
	}
	out, err := profileYAML(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "name: web\ndescription: d\nmax_validity_days: 365\next_key_usage:\n  - server_auth\nzeta: last\n"
	if string(out) != want {
		t.Errorf("profileYAML =\n%s\nwant\n%s", out, want)
	}
}
