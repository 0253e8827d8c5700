package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// defaultContext is the name a login saves under without --context.
const defaultContext = "default"

func loginCommand() *command {
	return &command{
		name:    "login",
		summary: "trust a server by its root CA fingerprint and save it, with your token, as a context for this user",
		args:    "--server URL --fingerprint SHA256 [--token-file FILE | --sso [--provider NAME] [--device]] [--context NAME]",
		example: "certwright login --server https://pki.example.internal:8443 --fingerprint 3A:1F:...:C2 --token-file alice.token",
		more: `The fingerprint is the "root CA SHA-256 fingerprint" that "certwright serve"
prints (or "certwright ca show ROOT" on the server); colons, case, a
"SHA256:" prefix or openssl's "sha256 Fingerprint=" do not matter, but all
32 bytes must match. login fetches
the root over TLS, refuses it unless its SHA-256 is that fingerprint, checks
the server's certificate against it, then calls whoami with the token; only
when all of that works does it write anything.

The token comes from --token-file, $CERTWRIGHT_TOKEN or $CERTWRIGHT_TOKEN_FILE,
else from standard input (asked for without echo on a terminal); never from
a flag's value. With --client-cert/--client-key and no token, the context
authenticates with that certificate (its paths are recorded, the files stay
where they are).

With --sso the person signs in at the server's identity provider instead:
in a browser on this machine through a loopback redirect when one can be
opened ($BROWSER, or xdg-open with a display), else (or with --device) by
the device flow, which prints a URL and a code to enter on any device. The
server checks the provider's ID token and returns a short-lived token (8 h
unless the provider's token_lifetime says otherwise) for the person's
principal, saved like any token. Without --server and --fingerprint, --sso
signs in again to the current context's server.

The context is saved in $XDG_CONFIG_HOME/certwright/contexts/NAME (default
~/.config/certwright; directory 0700, token 0600) and becomes the current
one; "certwright context list|use|remove" manage them.`,
		run: runLogin,
	}
}

func runLogin(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("login")
	var fingerprint string
	var sso ssoLogin
	var useSSO bool
	fs.StringVar(&fingerprint, "fingerprint", "", "SHA-256 `FINGERPRINT` of the server's root CA, as `certwright serve` printed it")
	fs.BoolVar(&useSSO, "sso", false, "sign in through the server's identity provider (single sign-on) instead of with a token")
	fs.StringVar(&sso.provider, "provider", "", "with --sso: the identity provider's `NAME` (needed when the server has several)")
	fs.BoolVar(&sso.device, "device", false, "with --sso: use the device flow (a code to enter on any device) even where a browser could be opened")
	fs.StringVar(&sso.caFile, "sso-ca-file", "", "with --sso: PEM `FILE` of CA certificates to trust for the identity provider, besides the system's")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if !useSSO && (sso.provider != "" || sso.device || sso.caFile != "") {
		return r.usagef("--provider, --device and --sso-ca-file go with --sso")
	}
	if useSSO && (r.explicitToken(cf) || cf.clientCert != "") {
		return r.usagef("--sso does not go with a token or a client certificate: the identity provider vouches for you, and the server issues a short-lived token")
	}
	server := firstNonEmpty(cf.server, r.getenv("CERTWRIGHT_SERVER"))
	if useSSO && server == "" && fingerprint == "" {
		// Sign in again to the server of the context already in use.
		if cur, err := r.currentSaved(cf); err == nil {
			server, fingerprint = cur.Server, cur.RootFingerprint
		}
	}
	switch {
	case server == "":
		return r.usagef("--server is required: the server's HTTPS URL, as `certwright serve` printed it after \"API (HTTPS):\"")
	case fingerprint == "":
		return r.usagef("--fingerprint is required: the \"root CA SHA-256 fingerprint\" `certwright serve` printed")
	case cf.dataDir != "":
		return r.usagef("--data-dir does not go with login: on the server's machine the data directory is found without logging in")
	case cf.caFile != "":
		return r.usagef("--ca-file does not go with login: login pins the root by --fingerprint")
	}
	name := firstNonEmpty(cf.context, r.getenv("CERTWRIGHT_CONTEXT"), defaultContext)
	if err := clientctx.ValidName(name); err != nil {
		return r.usagef("--context: %s", strings.TrimPrefix(err.Error(), "clientctx: "))
	}
	fp, err := clientctx.ParseFingerprint(fingerprint)
	if err != nil {
		return r.usagef("--fingerprint: %s", strings.TrimPrefix(err.Error(), "clientctx: "))
	}
	u, err := parseServerURL(server)
	if err != nil {
		return err
	}
	store, err := r.contextStore()
	if err != nil {
		return err
	}
	if useSSO {
		return r.loginSSO(ctx, cf, sso, name, u, fp, store)
	}
	cert, certFile, err := r.findClientCert(cf, nil)
	if err != nil {
		return err
	}
	tok, err := r.loginToken(cf, u.String(), cert != nil)
	if err != nil {
		return err
	}

	root, err := fetchPinnedRoot(ctx, u, fp)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	c := newClient(&endpoint{server: u, token: tok, roots: pool, clientCert: cert, certFile: certFile})
	defer c.close()
	who, err := c.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("login refused, nothing saved: %w", err)
	}

	saved := clientctx.Context{Name: name, Server: u.String(), RootFingerprint: fp.String(),
		CreatedAt: r.now().UTC(), Principal: who.Name}
	if cert != nil {
		if saved.ClientCert, err = filepath.Abs(firstNonEmpty(cf.clientCert, r.getenv("CERTWRIGHT_CLIENT_CERT"))); err != nil {
			return err
		}
		if saved.ClientKey, err = filepath.Abs(firstNonEmpty(cf.clientKey, r.getenv("CERTWRIGHT_CLIENT_KEY"))); err != nil {
			return err
		}
	}
	return r.saveLogin(cf, store, saved, root, tok, who, fmt.Sprintf("Logged in to %s as %s (%s, %s)", saved.Server, who.Name, who.Kind, credentialText(who)),
		func(f *fields) { f.add("  root CA", root.Subject.String()+", SHA-256 "+saved.RootFingerprint) })
}

// saveLogin saves a login that worked as the current context and says so:
// headline, then the context, what more adds, and where it is saved.
func (r *runner) saveLogin(cf *clientFlags, store *clientctx.Store, saved clientctx.Context, root *x509.Certificate, tok string,
	who apitypes.Whoami, headline string, more func(*fields)) error {
	if err := store.Save(saved, root.Raw, tok, true); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, loginResult{Context: saved.Name, Current: true, Server: saved.Server,
			RootFingerprint: saved.RootFingerprint, RootSubject: root.Subject.String(),
			Directory: store.ContextDir(saved.Name), Whoami: who})
	}
	fmt.Fprintln(r.stdout, headline)
	f := newFields(r.stdout)
	f.add("  context", saved.Name+" (current)")
	more(f)
	f.add("  saved in", store.ContextDir(saved.Name))
	return f.flush()
}

// fetchPinnedRoot fetches the server's root and refuses it unless it has
// the fingerprint given, saying what to check.
func fetchPinnedRoot(ctx context.Context, u *url.URL, fp clientctx.Fingerprint) (*x509.Certificate, error) {
	root, err := clientctx.FetchRoot(ctx, u, fp)
	if err != nil {
		hint := "check --server (the URL `certwright serve` printed after \"API (HTTPS):\") and that its TLS names cover that host"
		var mm *clientctx.MismatchError
		if errors.As(err, &mm) {
			hint = "compare with the fingerprint `certwright serve` printed on the server (or `certwright ca show ROOT` there); a different one means another server, or someone in between"
		}
		return nil, &hintError{fmt.Errorf("login refused, nothing saved: %s", strings.TrimPrefix(err.Error(), "clientctx: ")), hint}
	}
	return root, nil
}

// loginResult is login's --json answer.
type loginResult struct {
	Context         string          `json:"context"`
	Current         bool            `json:"current"`
	Server          string          `json:"server"`
	RootFingerprint string          `json:"root_fingerprint"`
	RootSubject     string          `json:"root_subject"`
	Directory       string          `json:"directory"`
	Whoami          apitypes.Whoami `json:"whoami"`
}

// maxTokenInput bounds a token read from a file or standard input.
const maxTokenInput = 64 << 10

// loginToken finds the token to save: --token-file, $CERTWRIGHT_TOKEN,
// $CERTWRIGHT_TOKEN_FILE, none with a client certificate, else standard
// input (asked for without echo on a terminal). Never a flag's value:
// that would sit in the shell history and the process list.
func (r *runner) loginToken(cf *clientFlags, server string, haveCert bool) (string, error) {
	if r.explicitToken(cf) {
		return r.findToken(cf, &source{})
	}
	if haveCert {
		return "", nil
	}
	if f, ok := r.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(r.stderr, "API token for %s: ", server)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(r.stderr)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		return checkToken(string(b), "the token typed")
	}
	data, err := readAllLimited(r.stdin, "standard input", maxTokenInput)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return "", newUsageError("no API token given",
			"pass --token-file FILE, set $CERTWRIGHT_TOKEN, or pipe the token on standard input (certwright login ... < alice.token)")
	}
	return checkToken(string(data), "standard input")
}

// checkToken trims a token and refuses anything that is not one word.
func checkToken(raw, from string) (string, error) {
	tok := strings.TrimSpace(raw)
	if tok == "" {
		return "", fmt.Errorf("read token: %s is empty", from)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("read token: %s holds more than one word; it must hold only the token", from)
	}
	return tok, nil
}
