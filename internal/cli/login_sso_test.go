package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/oidc/oidctest"
)

const ssoTestPassword = "correct horse battery staple"

// ssoServer runs a provider with alice (pki-admins) and "certwright
// serve" configured for it, and returns the server's URL and fingerprint.
func ssoServer(t *testing.T) (idp *oidctest.Provider, url string, fp clientctx.Fingerprint) {
	t.Helper()
	idp, err := oidctest.Start(context.Background(), oidctest.Options{
		Users: []oidctest.User{{Username: "alice", Password: ssoTestPassword, Email: "alice@example.test", EmailVerified: true, Groups: []string{"pki-admins"}}},
		Clients: []oidctest.Client{
			{ID: "certwright", Secret: "console-secret", RedirectURIs: []string{"https://127.0.0.1:8443/login/sso/callback"}},
			{ID: "certwright-cli", RedirectURIs: []string{"http://127.0.0.1/callback"}, DeviceGrant: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	dataDir := filepath.Join(t.TempDir(), "certwright-data")
	if code, _, errOut := runIn(t, nil, "", "init", "--data-dir", dataDir); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "console-secret"), []byte("console-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, config.FileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("auth:\n  oidc:\n    - name: corp\n      issuer: " + idp.Issuer() + "\n      client_id: certwright\n" +
		"      client_secret_file: console-secret\n      cli_client_id: certwright-cli\n      create_principals: true\n" +
		"      roles:\n        - group: pki-admins\n          role: admin\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	url, fp = serveDir(t, dataDir)
	return idp, url, fp
}

// deviceApprover is login's standard error: when login prints the device
// page and code, it approves them at the provider as alice, as a person
// would on their phone.
type deviceApprover struct {
	t    *testing.T
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan error
	once sync.Once
}

var deviceLine = regexp.MustCompile(`open (\S+)\nand enter the code (\S+)\n`)

func (d *deviceApprover) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Write(p)
	if m := deviceLine.FindStringSubmatch(d.buf.String()); m != nil {
		d.once.Do(func() {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				d.done <- oidctest.ApproveDevice(ctx, oidctest.NewBrowser(), m[1], m[2], "alice", ssoTestPassword)
			}()
		})
	}
	return len(p), nil
}

func (d *deviceApprover) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}

// TestLoginSSODevice: login --sso --device prints the provider's device
// page and code; once the person approves there, the server exchanges the
// ID token for a short-lived token of alice's (created at this first
// sign-in, admin through her group), saved 0600 in the context; whoami
// then shows alice, the token and its expiry about 8 hours out.
func TestLoginSSODevice(t *testing.T) {
	t.Parallel()
	_, url, fp := ssoServer(t)
	cfgHome := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": cfgHome}
	approver := &deviceApprover{t: t, done: make(chan error, 1)}
	var out bytes.Buffer
	code := Main(context.Background(), []string{"login", "--sso", "--device", "--server", url, "--fingerprint", fp.String()},
		strings.NewReader(""), &out, approver, func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("login --sso: %d\n%s\n%s", code, out.String(), approver.String())
	}
	select {
	case err := <-approver.done:
		if err != nil {
			t.Fatalf("approving the device: %v", err)
		}
	default:
		t.Fatal("login succeeded without the device page being approved")
	}
	if !strings.Contains(out.String(), "as alice through corp") || !strings.Contains(out.String(), "admin") {
		t.Errorf("login output: %s", out.String())
	}
	tok := filepath.Join(cfgHome, "certwright", "contexts", defaultContext)
	entries, err := os.ReadDir(tok)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.Name(), "token") && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	code, whoOut, errOut := runIn(t, env, "", "whoami")
	if code != 0 || !strings.Contains(whoOut, "alice") || !strings.Contains(whoOut, "expires") || !strings.Contains(whoOut, "from a sign-in through corp") {
		t.Fatalf("whoami: %d %s %s", code, whoOut, errOut)
	}
	code, jsonOut, _ := runIn(t, env, "", "whoami", "--json")
	var who struct {
		Name      string    `json:"name"`
		ExpiresAt time.Time `json:"expires_at"`
		Via       string    `json:"via"`
	}
	if code != 0 || json.Unmarshal([]byte(jsonOut), &who) != nil {
		t.Fatalf("whoami --json: %d %s", code, jsonOut)
	}
	if left := time.Until(who.ExpiresAt); who.Name != "alice" || who.Via != "oidc:corp" || left < 7*time.Hour || left > 8*time.Hour+time.Minute {
		t.Errorf("whoami: %s, token expires in %s, want alice and about 8h", who.Name, left)
	}

	// logout ends the sign-in: the saved token no longer works.
	code, outOut, errOut := runIn(t, env, "", "logout")
	if code != 0 || !strings.Contains(outOut, "Signed out of") || !strings.Contains(outOut, "of alice is revoked") {
		t.Fatalf("logout: %d %s %s", code, outOut, errOut)
	}
	if code, whoOut, errOut := runIn(t, env, "", "whoami"); code == 0 {
		t.Errorf("whoami after logout: %d %s %s, want refused", code, whoOut, errOut)
	}
}

// TestLoginSSORefusals: --provider names a provider the server lacks;
// SSO flags without --sso; --sso with a token file.
func TestLoginSSORefusals(t *testing.T) {
	t.Parallel()
	_, url, fp := ssoServer(t)
	env := map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"login", "--sso", "--provider", "nope", "--server", url, "--fingerprint", fp.String()}, "no identity provider of that name"},
		{[]string{"login", "--device", "--server", url, "--fingerprint", fp.String()}, "go with --sso"},
		{[]string{"login", "--sso", "--token-file", "x", "--server", url, "--fingerprint", fp.String()}, "does not go with a token"},
	} {
		code, _, errOut := runIn(t, env, "", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %q, want an error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestLoginSSOBrowser: with $BROWSER set, login --sso opens it on the
// provider's page with a loopback redirect (RFC 8252); the person signs in
// there, the provider sends the browser back to the CLI's loopback
// listener, and the login completes as alice. $BROWSER here is a script
// that hands the URL to the test, which plays the person.
func TestLoginSSOBrowser(t *testing.T) {
	t.Parallel()
	_, url, fp := ssoServer(t)
	dir := t.TempDir()
	opened := filepath.Join(dir, "opened-url")
	browser := filepath.Join(dir, "browser")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+".tmp && mv "+opened+".tmp "+opened+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "home"), "BROWSER": browser}
	person := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			u, err := os.ReadFile(opened)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hc := oidctest.NewBrowser()
			cb, err := oidctest.Login(ctx, hc, string(u), "alice", ssoTestPassword)
			if err != nil {
				person <- err
				return
			}
			resp, err := hc.Get(cb.String())
			if err == nil {
				resp.Body.Close()
			}
			person <- err
			return
		}
		person <- os.ErrDeadlineExceeded
	}()
	code, out, errOut := runIn(t, env, "", "login", "--sso", "--server", url, "--fingerprint", fp.String())
	if err := <-person; err != nil {
		t.Fatalf("the person's sign-in at the provider: %v", err)
	}
	if code != 0 || !strings.Contains(out, "as alice through corp") || !strings.Contains(errOut, "Opening a browser") {
		t.Fatalf("login --sso with a browser: %d\n%s\n%s", code, out, errOut)
	}
}
