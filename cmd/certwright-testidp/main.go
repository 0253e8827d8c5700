// Command certwright-testidp runs a small OpenID Connect identity provider
// on loopback, for trying Certwright's single sign-on without a real one.
// It is for tests and trials only: plain http, passwords in memory.
//
//	go run ./cmd/certwright-testidp [-listen 127.0.0.1:5556] [-config FILE] [-password PW]
//
// It has two users, alice (group pki-admins) and bob (group pki-viewers),
// with passwords printed at start (random unless -password sets one, for
// trying things out), a confidential client "certwright" for the console
// and a public client "certwright-cli" (loopback redirects, device grant)
// for certwright login --sso. It writes the console client's secret to a
// file with mode 0600 and prints the auth.oidc block to paste into
// Certwright's config. -config FILE replaces users and clients with those
// of a YAML file (see fileConfig).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/oidc/oidctest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "certwright-testidp:", err)
		os.Exit(1)
	}
}

// fileConfig is the -config file: the users and clients to serve.
type fileConfig struct {
	Users []struct {
		Username      string   `yaml:"username"`
		Password      string   `yaml:"password"`
		Email         string   `yaml:"email"`
		EmailVerified bool     `yaml:"email_verified"`
		Name          string   `yaml:"name"`
		Groups        []string `yaml:"groups"`
	} `yaml:"users"`
	Clients []struct {
		ID           string   `yaml:"id"`
		Secret       string   `yaml:"secret"`
		RedirectURIs []string `yaml:"redirect_uris"`
		DeviceGrant  bool     `yaml:"device_grant"`
	} `yaml:"clients"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certwright-testidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5556", "loopback `address` to serve on")
	cfgFile := fs.String("config", "", "YAML `file` of users and clients replacing the built-in ones")
	password := fs.String("password", "", "one `password` for every built-in user instead of random ones (for trying things out only)")
	secretFile := fs.String("secret-file", "", "`file` for the console client's secret (default in a new temporary directory)")
	console := fs.String("console", "https://127.0.0.1:8443", "Certwright's console `URL`, for the redirect URI")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: certwright-testidp [flags]\n\nA test OpenID provider on loopback, for trying Certwright's single sign-on.\n\nExample:\n  go run ./cmd/certwright-testidp -listen 127.0.0.1:5556\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address such as 127.0.0.1:5556 (this provider has no TLS and trivial passwords)", *listen)
	}
	// zitadel's op logs through the default logger; keep it to warnings.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	var opts oidctest.Options
	secret := ""
	if *cfgFile != "" {
		if opts, err = readConfig(*cfgFile); err != nil {
			return err
		}
	} else {
		secret = random()
		if opts, err = builtin(*password, secret, strings.TrimSuffix(*console, "/")); err != nil {
			return err
		}
	}
	opts.Addr = *listen
	idp, err := oidctest.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer idp.Close()

	fmt.Fprintf(stdout, "certwright-testidp: issuer %s (for tests and trials only)\n\nUsers:\n", idp.Issuer())
	for _, u := range opts.Users {
		fmt.Fprintf(stdout, "  %-8s password %-24s groups %s\n", u.Username, u.Password, strings.Join(u.Groups, ", "))
	}
	if secret != "" {
		path, err := writeSecret(*secretFile, secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nConsole client secret written to %s (mode 0600).\n\nAdd to Certwright's config.yaml:\n\n%s\n", path, authBlock(idp.Issuer(), path))
	}
	fmt.Fprintln(stdout, "Serving until interrupted (Ctrl-C).")
	<-ctx.Done()
	return nil
}

func random() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func builtin(password, secret, console string) (oidctest.Options, error) {
	pw := func() string {
		if password != "" {
			return password
		}
		return random()
	}
	if !strings.HasPrefix(console, "https://") {
		return oidctest.Options{}, fmt.Errorf("-console %q: want Certwright's https URL", console)
	}
	return oidctest.Options{
		Users: []oidctest.User{
			{Username: "alice", Password: pw(), Email: "alice@example.com", EmailVerified: true, Name: "Alice Admin", Groups: []string{"pki-admins"}},
			{Username: "bob", Password: pw(), Email: "bob@example.com", EmailVerified: true, Name: "Bob Viewer", Groups: []string{"pki-viewers"}},
		},
		Clients: []oidctest.Client{
			{ID: "certwright", Secret: secret, RedirectURIs: []string{console + "/login/sso/callback"}, PostLogoutRedirectURIs: []string{console + "/"}},
			// Any port of this loopback URI is accepted (RFC 8252 section 7.3).
			{ID: "certwright-cli", RedirectURIs: []string{"http://127.0.0.1/callback"}, DeviceGrant: true},
		},
	}, nil
}

func readConfig(path string) (oidctest.Options, error) {
	f, err := os.Open(path)
	if err != nil {
		return oidctest.Options{}, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(io.LimitReader(f, 1<<20))
	dec.KnownFields(true)
	var fc fileConfig
	if err := dec.Decode(&fc); err != nil {
		return oidctest.Options{}, fmt.Errorf("%s: %w", path, err)
	}
	var opts oidctest.Options
	for _, u := range fc.Users {
		opts.Users = append(opts.Users, oidctest.User{Username: u.Username, Password: u.Password, Email: u.Email,
			EmailVerified: u.EmailVerified, Name: u.Name, Groups: u.Groups})
	}
	for _, c := range fc.Clients {
		opts.Clients = append(opts.Clients, oidctest.Client{ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs, DeviceGrant: c.DeviceGrant})
	}
	return opts, nil
}

func writeSecret(path, secret string) (string, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "certwright-testidp-")
		if err != nil {
			return "", err
		}
		path = filepath.Join(dir, "client-secret")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(abs, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	// WriteFile keeps the mode of a file that already exists.
	if err := os.Chmod(abs, 0o600); err != nil {
		return "", err
	}
	return abs, nil
}

func authBlock(issuer, secretPath string) string {
	return fmt.Sprintf(`auth:
  oidc:
    - name: testidp
      issuer: %s
      client_id: certwright
      client_secret_file: %s
      cli_client_id: certwright-cli
      create_principals: true
      roles:
        - group: pki-admins
          role: admin
        - group: pki-viewers
          role: viewer
`, issuer, secretPath)
}
