package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// liveServer runs "certwright serve" in-process on 127.0.0.1 and returns
// its data directory, HTTPS URL and root fingerprint once it answers.
func liveServer(t *testing.T) (dataDir, url string, fp clientctx.Fingerprint) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "certwright-data")
	url, fp = serveDir(t, dataDir)
	return dataDir, url, fp
}

// serveDir runs "certwright serve" on dataDir (initialising it when it
// does not exist) until the test ends, and returns its HTTPS URL and root
// fingerprint once it answers.
func serveDir(t *testing.T, dataDir string) (url string, fp clientctx.Fingerprint) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- Main(ctx, []string{"serve", "--data-dir", dataDir, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"},
			nil, &out, &errb, func(string) string { return "" })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(filepath.Join(dataDir, serverFile)); err == nil {
			var doc struct{ URL string }
			if json.Unmarshal(data, &doc) == nil && doc.URL != "" {
				url = doc.URL
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not write %s within 60s", serverFile)
		}
	}
	rootPEM, err := os.ReadFile(filepath.Join(dataDir, rootFile))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(rootPEM)
	if err != nil {
		t.Fatal(err)
	}
	return url, clientctx.FingerprintOf(certs[0].Raw)
}

// runIn runs the command line with stdin.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestLogin(t *testing.T) {
	t.Parallel()
	dataDir, url, fp := liveServer(t)
	adminToken, err := os.ReadFile(filepath.Join(dataDir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(dataDir, tokenFile)
	cfgHome := t.TempDir()
	cfgDir := filepath.Join(cfgHome, "certwright")
	// A user elsewhere: no data directory, only the config home.
	user := map[string]string{"XDG_CONFIG_HOME": cfgHome}
	nothingWritten := func(t *testing.T) {
		t.Helper()
		if _, err := os.Stat(cfgDir); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(cfgDir)
			t.Fatalf("%s exists after a refused login (%v, %d entries)", cfgDir, err, len(entries))
		}
	}
	other := clientctx.FingerprintOf([]byte("another root"))

	t.Run("wrong fingerprint is refused with both shown", func(t *testing.T) {
		code, out, errOut := run(t, user, "login", "--server", url, "--fingerprint", other.String(), "--token-file", tokenPath)
		if code != exitError || out != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
		}
		for _, want := range []string{"login refused, nothing saved", other.String(), fp.String(), "hint: "} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}
		nothingWritten(t)
	})
	t.Run("rejected token", func(t *testing.T) {
		code, _, errOut := runIn(t, user, "cwt_0123456789abcdef_not-the-secret\n", "login", "--server", url, "--fingerprint", fp.String())
		if code != exitError || !strings.Contains(errOut, "nothing saved") || !strings.Contains(errOut, "401") {
			t.Errorf("exit %d, stderr %q; want a refused login naming the 401", code, errOut)
		}
		nothingWritten(t)
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"login", "--fingerprint", fp.String()},
			{"login", "--server", url},
			{"login", "--server", url, "--fingerprint", "AB:CD"},
			{"login", "--server", url, "--fingerprint", fp.String(), "--context", "../etc"},
			{"login", "--server", url, "--fingerprint", fp.String(), "--ca-file", "root.pem"},
		} {
			if code, _, errOut := run(t, user, args...); code != exitUsage || !strings.Contains(errOut, "hint: ") {
				t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, errOut)
			}
		}
		if code, _, errOut := run(t, user, "login", "--server", url, "--fingerprint", fp.String()); code != exitUsage || !strings.Contains(errOut, "no API token") {
			t.Errorf("no token: exit %d, stderr %q", code, errOut)
		}
		nothingWritten(t)
	})

	// The fingerprint as pasted: lowercase, no colons, with a prefix; the
	// token on standard input.
	pasted := "SHA256:" + strings.ToLower(strings.ReplaceAll(fp.String(), ":", ""))
	code, out, errOut := runIn(t, user, string(adminToken), "login", "--server", url, "--fingerprint", pasted)
	if code != 0 || !strings.Contains(out, "Logged in to "+url+" as admin") {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}
	for path, want := range map[string]os.FileMode{cfgDir: 0o700, filepath.Join(cfgDir, "contexts", "default"): 0o700,
		filepath.Join(cfgDir, "contexts", "default", clientctx.TokenFile): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v; want mode %04o", path, err, want)
		}
	}

	t.Run("works from anywhere", func(t *testing.T) {
		code, out, errOut := run(t, user, "ca", "list")
		if code != 0 || !strings.Contains(out, "root") {
			t.Errorf("ca list: exit %d\n%s%s", code, out, errOut)
		}
		// Global flags before the command, in any order.
		for _, args := range [][]string{
			{"--json", "ca", "list"},
			{"--context", "default", "--json", "ca", "list"},
			{"ca", "--json", "--context=default", "list"},
			{"--server", url, "ca", "list", "--json"},
		} {
			code, out, errOut := run(t, user, args...)
			var cas apitypes.CAList
			if code != 0 || json.Unmarshal([]byte(out), &cas) != nil || len(cas.CAs) == 0 {
				t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
			}
		}
	})
	t.Run("whoami", func(t *testing.T) {
		code, out, errOut := run(t, user, "whoami", "--json")
		var who map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &who) != nil {
			t.Fatalf("whoami --json: exit %d\n%s%s", code, out, errOut)
		}
		if who["name"] != "admin" || who["auth_method"] != "token" || who["token_id"] == "" || who["auth"] == "" {
			t.Errorf("whoami = %v", who)
		}
		if perms, _ := who["permissions"].([]any); len(perms) < 5 {
			t.Errorf("whoami permissions = %v, want the admin's", who["permissions"])
		}
		code, out, _ = run(t, user, "whoami")
		for _, want := range []string{"Principal:", "admin", "context default", "token ", "Permissions:", "ca:manage"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("whoami: exit %d, lacks %q\n%s", code, want, out)
			}
		}
	})
	t.Run("contexts and precedence", func(t *testing.T) {
		code, out, errOut := run(t, user, "login", "--context", "lab", "--server", url, "--fingerprint", fp.String(), "--token-file", tokenPath, "--json")
		var res map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["context"] != "lab" {
			t.Fatalf("login --context lab --json: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = run(t, user, "context", "list", "--json")
		var list struct {
			Contexts []contextView `json:"contexts"`
			Current  string        `json:"current"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Contexts) != 2 || list.Current != "lab" {
			t.Errorf("context list --json: exit %d\n%s", code, out)
		}
		if code, _, errOut := run(t, user, "context", "use", "default"); code != 0 {
			t.Errorf("context use: %s", errOut)
		}
		if _, out, _ := run(t, user, "context", "list"); !regexp.MustCompile(`(?m)^\*\s+default\s`).MatchString(out) {
			t.Errorf("context list does not mark default current:\n%s", out)
		}
		// An explicit --context or $CERTWRIGHT_CONTEXT wins over the current one...
		if _, out, _ := run(t, user, "whoami", "--context", "lab"); !strings.Contains(out, "context lab") {
			t.Errorf("whoami --context lab:\n%s", out)
		}
		withEnv := map[string]string{"XDG_CONFIG_HOME": cfgHome, "CERTWRIGHT_CONTEXT": "lab"}
		if _, out, _ := run(t, withEnv, "whoami"); !strings.Contains(out, "context lab") {
			t.Errorf("$CERTWRIGHT_CONTEXT=lab whoami:\n%s", out)
		}
		// ...and a data directory named explicitly wins over the current context.
		withDir := map[string]string{"XDG_CONFIG_HOME": cfgHome, "CERTWRIGHT_DATA_DIR": dataDir}
		if _, out, _ := run(t, withDir, "whoami"); !strings.Contains(out, "data directory "+dataDir) {
			t.Errorf("$CERTWRIGHT_DATA_DIR whoami:\n%s", out)
		}
		code, _, errOut = run(t, user, "--context", "nope", "ca", "list")
		if code != exitError || !strings.Contains(errOut, `no context "nope"`) || !strings.Contains(errOut, "default, lab") || !strings.Contains(errOut, "certwright login --context nope") {
			t.Errorf("unknown context: exit %d, stderr %q", code, errOut)
		}
		if code, _, errOut := run(t, user, "context", "remove", "lab"); code != 0 {
			t.Errorf("context remove: %s", errOut)
		}
		if _, err := os.Stat(filepath.Join(cfgDir, "contexts", "lab")); !os.IsNotExist(err) {
			t.Errorf("removed context still on disk: %v", err)
		}
		if code, _, _ := run(t, user, "context", "use", "lab"); code == 0 {
			t.Error("context use of a removed context succeeded")
		}
	})
}

// TestLoginWithClientCertificate: a context made with --client-cert and
// --client-key and no token authenticates by mTLS from then on.
func TestLoginWithClientCertificate(t *testing.T) {
	t.Parallel()
	dataDir, url, fp := liveServer(t)
	admin := map[string]string{"CERTWRIGHT_DATA_DIR": dataDir}
	const uri = "spiffe://example.internal/bot"
	for _, args := range [][]string{
		{"principal", "create", "bot", "--kind", "machine", "--role", "viewer"},
		{"principal", "identity", "add", "bot", "--uri", uri},
	} {
		if code, out, errOut := run(t, admin, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	key := newKey(t)
	u, _ := neturl.Parse(uri)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bot"}, URIs: []*neturl.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csr, certFile, keyFile := filepath.Join(dir, "bot.csr"), filepath.Join(dir, "bot.pem"), filepath.Join(dir, "bot.key")
	writeFile(t, csr, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), 0o644)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), 0o600)
	if code, out, errOut := run(t, admin, "cert", "sign", "--csr", csr, "--profile", "internal_service", "--out", certFile); code != 0 {
		t.Fatalf("cert sign: exit %d\n%s%s", code, out, errOut)
	}

	user := map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
	code, out, errOut := run(t, user, "login", "--context", "bot", "--server", url, "--fingerprint", fp.String(),
		"--client-cert", certFile, "--client-key", keyFile)
	if code != 0 || !strings.Contains(out, "as bot") || !strings.Contains(out, "client certificate") {
		t.Fatalf("login with a client certificate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, user, "whoami", "--json")
	var who apitypes.Whoami
	if code != 0 || json.Unmarshal([]byte(out), &who) != nil || who.Name != "bot" || who.AuthMethod != "client_certificate" || who.ExpiresAt == nil {
		t.Errorf("whoami through the mTLS context: exit %d\n%s%s", code, out, errOut)
	}
}

func TestGlobalFlagsReachTheLeaf(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/cas": func(w http.ResponseWriter, r *http.Request) {
			writeTestJSON(w, 200, apitypes.CAList{CAs: []apitypes.CA{{Name: "root"}}})
		},
	})
	for _, args := range [][]string{
		{"--json", "--data-dir", f.dataDir, "ca", "list"},
		{"--data-dir=" + f.dataDir, "ca", "--json", "list"},
		{"ca", "list", "--json", "--data-dir", f.dataDir},
		{"-json", "ca", "list", "--data-dir", f.dataDir},
	} {
		code, out, errOut := run(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "{\n  \"cas\": [") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// A client flag before a command that takes none is that command's usage error.
	if code, _, errOut := run(t, nil, "--json", "version"); code != exitUsage || !strings.Contains(errOut, "unknown flag --json") {
		t.Errorf("--json version: exit %d, stderr %q", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	leaves, groups := allPaths()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, nil, "completion", shell)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, p := range append(leaves, groups...) {
				if !strings.Contains(out, `"`+strings.Join(p, " ")+`"`) {
					t.Errorf("%s completion lacks %q", shell, strings.Join(p, " "))
				}
			}
			for _, flag := range []string{"--expiring-within", "--fingerprint", "--https-listen", "--context"} {
				if !strings.Contains(out, flag) {
					t.Errorf("%s completion lacks flag %s", shell, flag)
				}
			}
			check := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}[shell]
			if _, err := exec.LookPath(check[0]); err != nil {
				t.Skipf("%s not installed: syntax not checked", shell)
			}
			file := filepath.Join(t.TempDir(), "certwright."+shell)
			writeFile(t, file, out, 0o644)
			if msg, err := exec.Command(check[0], append(check[1:], file)...).CombinedOutput(); err != nil {
				t.Errorf("%s %v: %v\n%s", check[0], check[1:], err, msg)
			}
		})
	}
	if code, _, errOut := run(t, nil, "completion", "powershell"); code != exitUsage || !strings.Contains(errOut, "bash, zsh or fish") {
		t.Errorf("completion powershell: exit %d, stderr %q", code, errOut)
	}
}

// TestBashCompletionCompletes drives the bash function as readline would.
func TestBashCompletionCompletes(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	_, script, _ := run(t, nil, "completion", "bash")
	file := filepath.Join(t.TempDir(), "certwright.bash")
	writeFile(t, file, script, 0o644)
	tests := []struct {
		words string
		want  []string
	}{
		{`certwright ""`, []string{"cert", "login", "whoami", "context", "completion"}},
		{`certwright --json ce`, []string{"cert"}},
		{`certwright --context prod ca ""`, []string{"list", "create-root"}},
		{`certwright cert list --exp`, []string{"--expiring-within"}},
		{`certwright login --fi`, []string{"--fingerprint"}},
		{`certwright context ""`, []string{"list", "use", "remove"}},
	}
	for _, tt := range tests {
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(`+tt.words+`); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _certwright; echo "${COMPREPLY[*]}"`, "bash", file)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.words, err, out)
		}
		got := strings.Fields(string(out))
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing %s: %v lacks %q", tt.words, got, w)
			}
		}
	}
}
