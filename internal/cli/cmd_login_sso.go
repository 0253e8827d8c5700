package cli

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ssoLogin is login --sso: the person signs in at the server's identity
// provider (in a browser through a loopback redirect, or with the device
// flow), and the server exchanges the provider's ID token for a
// short-lived Certwright token, saved in the context as a token login
// saves one. The sign-in's nonce binds it to the server (oidc.Binding),
// so no other server the token is shown to can exchange it.
type ssoLogin struct {
	provider string
	device   bool
	caFile   string
}

// ssoWait bounds a sign-in at the provider: the person has this long to
// finish it in the browser or on the device page.
const ssoWait = 10 * time.Minute

func (r *runner) loginSSO(ctx context.Context, cf *clientFlags, s ssoLogin, name string, u *url.URL, fp clientctx.Fingerprint, store *clientctx.Store) error {
	root, err := fetchPinnedRoot(ctx, u, fp)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	anon := newClient(&endpoint{server: u, roots: pool})
	defer anon.close()
	var list apitypes.SSOProviders
	if err := anon.getJSON(ctx, "/api/v1/sso/providers", nil, &list); err != nil {
		return fmt.Errorf("login refused, nothing saved: list the server's identity providers: %w", err)
	}
	p, err := chooseProvider(list.Providers, s.provider)
	if err != nil {
		return err
	}
	var caPEM []byte
	if s.caFile != "" {
		if caPEM, err = readLimited(s.caFile, 1<<20); err != nil {
			return fmt.Errorf("--sso-ca-file: %w", err)
		}
	}
	hc, err := oidc.HTTPClient(caPEM)
	if err != nil {
		return fmt.Errorf("--sso-ca-file: %w", err)
	}
	params := oidc.ClientParams{Issuer: p.Issuer, ClientID: p.ClientID, Scopes: p.Scopes, HTTPClient: hc}
	bind, err := oidc.NewBinding(u.Host)
	if err != nil {
		return fmt.Errorf("login refused, nothing saved: --server %s: %w", u, err)
	}
	nonce, err := bind.Nonce()
	if err != nil {
		return fmt.Errorf("login refused, nothing saved: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, ssoWait)
	defer cancel()
	tok, err := r.signInAt(wctx, params, p.Name, s.device, nonce)
	if err != nil {
		return fmt.Errorf("login refused, nothing saved: %w", err)
	}
	var res apitypes.SSOTokenResult
	req := apitypes.SSOTokenRequest{Provider: p.Name, IDToken: tok.RawIDToken, Binder: bind.Binder}
	if err := anon.postJSON(ctx, "/api/v1/sso/token", req, &res); err != nil {
		return fmt.Errorf("login refused, nothing saved: the server refused the sign-in: %w", err)
	}
	c := newClient(&endpoint{server: u, token: res.Token, roots: pool})
	defer c.close()
	who, err := c.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("login refused, nothing saved: %w", err)
	}
	saved := clientctx.Context{Name: name, Server: u.String(), RootFingerprint: fp.String(), CreatedAt: r.now().UTC(), Principal: who.Name}
	return r.saveLogin(cf, store, saved, root, res.Token, who,
		fmt.Sprintf("Logged in to %s as %s through %s (%s)", saved.Server, who.Name, p.Name, credentialText(who)),
		func(f *fields) {
			if res.Created {
				f.add("  principal", who.Name+" (created at this first sign-in)")
			}
			f.add("  roles", cmp.Or(rolesText(who), "none"))
		})
}

// chooseProvider picks the provider named, or the only one.
func chooseProvider(ps []apitypes.SSOProvider, name string) (apitypes.SSOProvider, error) {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	switch {
	case len(ps) == 0:
		return apitypes.SSOProvider{}, &hintError{errors.New("login refused, nothing saved: the server has no identity provider configured"),
			"an administrator adds one under auth.oidc in the server's config.yaml; until then, log in with a token (certwright login --token-file FILE ...)"}
	case name != "":
		if i := slices.Index(names, name); i >= 0 {
			return ps[i], nil
		}
		return apitypes.SSOProvider{}, newUsageError(fmt.Sprintf("--provider %s: the server has no identity provider of that name", name),
			"choose one of: "+strings.Join(names, ", "))
	case len(ps) > 1:
		return apitypes.SSOProvider{}, newUsageError("the server has several identity providers", "choose one with --provider: "+strings.Join(names, ", "))
	}
	return ps[0], nil
}

// signInAt signs the person in at the provider, with nonce binding the
// sign-in to the server: in a browser on this machine when one can be
// opened (a loopback redirect, RFC 8252), else, or with --device, by the
// device flow (RFC 8628), whose page can be opened on any device.
func (r *runner) signInAt(ctx context.Context, p oidc.ClientParams, name string, device bool, nonce string) (*oidc.Token, error) {
	showDevice := func(uri, complete, code string) {
		fmt.Fprintf(r.stderr, "To sign in through %s, open %s\nand enter the code %s\n", name, uri, code)
		if complete != "" {
			fmt.Fprintf(r.stderr, "(or open %s, which carries the code)\n", complete)
		}
		fmt.Fprintf(r.stderr, "Waiting up to %s for the sign-in...\n", ssoWait)
	}
	opener := r.browserOpener()
	if device || opener == nil {
		tok, err := oidc.DeviceLogin(ctx, p, nonce, showDevice)
		if !errors.Is(err, oidc.ErrDeviceUnsupported) || device {
			return tok, err
		}
		// No device flow at this provider and no browser to open: print
		// the URL for a browser on this machine to open.
		opener = func(u string) error {
			fmt.Fprintf(r.stderr, "To sign in through %s, open this URL in a browser on this machine:\n%s\n", name, u)
			return nil
		}
	}
	return oidc.LoopbackLogin(ctx, p, nonce, func(u string) error {
		fmt.Fprintf(r.stderr, "Opening a browser to sign in through %s (waiting up to %s)...\n", name, ssoWait)
		return opener(u)
	})
}

// browserOpener returns how to open a URL in this user's browser, nil
// when there is none ($BROWSER, or the desktop's opener with a display).
func (r *runner) browserOpener() func(string) error {
	run := func(prog string) func(string) error {
		return func(u string) error {
			cmd := exec.Command(prog, u)
			cmd.Stdout, cmd.Stderr = nil, nil
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("open a browser with %s: %w", filepath.Base(prog), err)
			}
			go func() { _ = cmd.Wait() }()
			return nil
		}
	}
	if b := r.getenv("BROWSER"); b != "" {
		if p, err := exec.LookPath(b); err == nil {
			return run(p)
		}
	}
	switch runtime.GOOS {
	case "darwin":
		if p, err := exec.LookPath("open"); err == nil {
			return run(p)
		}
	case "linux", "freebsd", "openbsd", "netbsd":
		if r.getenv("DISPLAY") == "" && r.getenv("WAYLAND_DISPLAY") == "" {
			return nil
		}
		if p, err := exec.LookPath("xdg-open"); err == nil {
			return run(p)
		}
	}
	return nil
}

// currentSaved is the context --context (or $CERTWRIGHT_CONTEXT) names,
// else the current one.
func (r *runner) currentSaved(cf *clientFlags) (*clientctx.Saved, error) {
	name := firstNonEmpty(cf.context, r.getenv("CERTWRIGHT_CONTEXT"))
	if name == "" {
		st, err := r.contextStore()
		if err != nil {
			return nil, err
		}
		if name, err = st.Current(); err != nil {
			return nil, err
		}
	}
	return r.loadContext(name)
}
