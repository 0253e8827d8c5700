package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

const patternHelp = "a.example.internal (exactly), *.example.internal (any depth below), *@example.internal (e-mail) or 10.1.0.0/16"

func principalCommands() []*command {
	return []*command{
		{
			name: "create", summary: "create a principal, optionally with a role and a first token",
			args:    "NAME --kind machine|human [--description D] [--role ROLE [--ca CA]... [--profile P]... [--names PATTERN]...] [--token [--token-expires 90d] [--token-out FILE]] [--json]",
			example: "certwright principal create deploy-bot --kind machine --role issuer --profile web_server --names '*.apps.example.internal' --token --token-out deploy-bot.token",
			more: "The token is shown once: on standard output (the principal's details then go to standard error), or in the\n" +
				"--token-out file, created with mode 0600 (an existing file is never replaced).\n" +
				"--names patterns: " + patternHelp + ".",
			run: runPrincipalCreate,
		},
		{
			name: "list", summary: "list principals", args: "[--json]",
			example: "certwright principal list",
			run:     runPrincipalList,
		},
		{
			name: "show", summary: "show a principal with its roles, identities and tokens", args: "NAME [--json]",
			example: "certwright principal show deploy-bot",
			run:     runPrincipalShow,
		},
		{
			name: "disable", summary: "disable a principal and revoke its tokens", args: "NAME [--json]",
			example: "certwright principal disable deploy-bot",
			run:     runPrincipalDisable,
		},
		{name: "identity", summary: "register the client-certificate names (mTLS) a principal authenticates with", sub: []*command{
			{
				name: "add", summary: "let client certificates with this SAN URI, DNS name or e-mail address, issued to the principal (register first, then issue), authenticate as it",
				args:    "NAME (--uri URI | --dns NAME | --email ADDRESS) [--json]",
				example: "certwright principal identity add deploy-bot --uri spiffe://example.internal/deploy-bot",
				run:     runIdentityAdd,
			},
			{
				name: "remove", summary: "stop a client-certificate name from authenticating as the principal",
				args:    "NAME (--uri URI | --dns NAME | --email ADDRESS)",
				example: "certwright principal identity remove deploy-bot --uri spiffe://example.internal/deploy-bot",
				run:     runIdentityRemove,
			},
		}},
	}
}

func tokenCommands() []*command {
	return []*command{
		{
			name: "create", summary: "create an API token for a principal (shown once)",
			args:    "PRINCIPAL [--expires 90d] [--description D] [--out FILE] [--json]",
			example: "certwright token create deploy-bot --expires 90d --out deploy-bot.token",
			more:    "The token is printed once on standard output, or written to the --out file with mode 0600 (an existing file is never replaced).",
			run:     runTokenCreate,
		},
		{
			name: "list", summary: "list tokens, of one principal or of all (never their secrets)",
			args:    "[PRINCIPAL] [--json]",
			example: "certwright token list deploy-bot",
			run:     runTokenList,
		},
		{
			name: "revoke", summary: "revoke a token", args: "ID [--json]",
			example: "certwright token revoke 9f2c4e1a7b3d5f60",
			run:     runTokenRevoke,
		},
	}
}

func roleCommands() []*command {
	perms := make([]string, 0, len(authz.Permissions()))
	for _, p := range authz.Permissions() {
		perms = append(perms, string(p))
	}
	return []*command{
		{
			name: "list", summary: "list the built-in and custom roles", args: "[--json]",
			example: "certwright role list",
			run:     runRoleList,
		},
		{
			name: "create", summary: "define a custom role",
			args:    "NAME --permissions P,... [--description D] [--json]",
			example: "certwright role create renewer --permissions cert:read,cert:issue --description \"renew only\"",
			more:    "Permissions: " + strings.Join(perms, ", ") + ".",
			run:     runRoleCreate,
		},
		{
			name: "delete", summary: "delete a custom role nobody is bound to", args: "NAME",
			example: "certwright role delete renewer",
			run:     runRoleDelete,
		},
		{
			name: "bind", summary: "grant a role to a principal, optionally limited to CAs, profiles and names",
			args:    "PRINCIPAL ROLE [--ca CA]... [--profile P]... [--names PATTERN]... [--json]",
			example: "certwright role bind deploy-bot issuer --ca issuing --names '*.apps.example.internal'",
			more:    "Without --ca, --profile or --names the role applies everywhere. --names patterns: " + patternHelp + ".",
			run:     runRoleBind,
		},
		{
			name: "unbind", summary: "remove a role binding", args: "BINDING_ID",
			example: "certwright role unbind b_4e1a7b3d5f609f2c",
			run:     runRoleUnbind,
		},
		{
			name: "bindings", summary: "list role bindings", args: "[--principal NAME] [--json]",
			example: "certwright role bindings --principal deploy-bot",
			run:     runRoleBindings,
		},
	}
}

// scopeFlags narrow a role binding.
type scopeFlags struct {
	cas, profiles, names listFlag
}

func (f *scopeFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.cas, "ca", "limit the role to `CA` (repeat or comma-separate; default: every CA)")
	fs.Var(&f.profiles, "profile", "limit the role to `PROFILE` (repeat or comma-separate; default: every profile)")
	fs.Var(&f.names, "names", "limit the role to names matching `PATTERN` (repeat or comma-separate; default: any name)")
}

func (f *scopeFlags) given() bool { return len(f.cas)+len(f.profiles)+len(f.names) > 0 }

// scope checks the name patterns here, so that a typo fails before any request.
func (r *runner) scope(f *scopeFlags) (apitypes.Scope, error) {
	for _, p := range f.names {
		if err := authz.ValidatePattern(p); err != nil {
			return apitypes.Scope{}, r.usagef("--names: %s", strings.TrimPrefix(err.Error(), "authz: "))
		}
	}
	return apitypes.Scope{CAs: f.cas, Profiles: f.profiles, Names: f.names}, nil
}

func scopeString(s apitypes.Scope) string {
	var parts []string
	if len(s.CAs) > 0 {
		parts = append(parts, "ca="+strings.Join(s.CAs, ","))
	}
	if len(s.Profiles) > 0 {
		parts = append(parts, "profile="+strings.Join(s.Profiles, ","))
	}
	if len(s.Names) > 0 {
		parts = append(parts, "names="+strings.Join(s.Names, ","))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// expiresIn validates a token lifetime and renders it as the server reads it.
func (r *runner) expiresIn(flagName, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	d, err := inventory.ParseWindow(s)
	if err != nil {
		return "", r.usagef("--%s: %v", flagName, err)
	}
	return inventory.FormatWindow(d), nil
}

// checkTokenFile fails before the token is minted when its file exists:
// a secret shown once is never written over another.
func checkTokenFile(path string) error {
	if path == "" || path == "-" {
		return nil
	}
	_, err := os.Lstat(path)
	if err == nil {
		return &hintError{fmt.Errorf("%s already exists; a token file is never overwritten", path),
			"choose another file name, or move the old file away first"}
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
}

// deliverToken shows a new token's secret its one time: in a new file of
// mode 0600 when out names one, else alone on stdout. It reports on notes
// where it went. A token whose file could not be written is useless, so
// the hint says how to revoke it.
func (r *runner) deliverToken(tok apitypes.NewToken, out string, notes io.Writer) error {
	if out == "" || out == "-" {
		if _, err := fmt.Fprintln(r.stdout, tok.Token); err != nil {
			return err
		}
		fmt.Fprintf(notes, "Token %s for %s printed above; it will not be shown again.\n", tok.Record.ID, tok.Record.Principal)
		return nil
	}
	if err := atomicfile.WriteNew(out, []byte(tok.Token+"\n"), 0o600); err != nil {
		return &hintError{err, "the token was created but not saved: revoke it with `certwright token revoke " + tok.Record.ID + "` and create another"}
	}
	fmt.Fprintf(notes, "Token %s for %s written to %s (mode 0600); it will not be shown again.\n", tok.Record.ID, tok.Record.Principal, out)
	return nil
}

func tokenStatus(t apitypes.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !t.ExpiresAt.After(now):
		return "expired"
	}
	return "active"
}

func principalStatus(p apitypes.Principal) string {
	if p.DisabledAt != nil {
		return "disabled"
	}
	return "active"
}

func runPrincipalCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal create")
	kind := fs.String("kind", "", "`KIND` of principal: machine (a system; may receive managed keys) or human")
	desc := fs.String("description", "", "free-text `DESCRIPTION`")
	role := fs.String("role", "", "bind this `ROLE` at once (see certwright role list)")
	var sf scopeFlags
	sf.register(fs)
	withToken := fs.Bool("token", false, "also create a first API token (shown once)")
	tokenExpires := fs.String("token-expires", "", "the token expires after `DURATION` (90d, 2w, 12h; default: never)")
	tokenOut := fs.String("token-out", "", "write the token to a new `FILE` with mode 0600 instead of standard output")
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := r.required(fs, "kind"); err != nil {
		return err
	}
	if !authz.Kind(*kind).Valid() {
		return r.usagef("--kind %q: want machine or human", *kind)
	}
	if strings.TrimSpace(pos[0]) == "" {
		return r.usagef("NAME must not be empty")
	}
	if sf.given() && *role == "" {
		return r.usagef("--ca, --profile and --names narrow --role; give --role too")
	}
	scope, err := r.scope(&sf)
	if err != nil {
		return err
	}
	if !*withToken && (*tokenExpires != "" || *tokenOut != "") {
		return r.usagef("--token-expires and --token-out go with --token")
	}
	expires, err := r.expiresIn("token-expires", *tokenExpires)
	if err != nil {
		return err
	}
	if err := checkTokenFile(*tokenOut); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.CreatePrincipal(ctx, apitypes.CreatePrincipalRequest{
		Name: pos[0], Kind: *kind, Description: *desc, Role: *role, Scope: scope,
		Token: *withToken, TokenExpiresIn: expires,
	})
	if err != nil {
		return err
	}
	if *withToken && res.Token == nil {
		return fmt.Errorf("principal %s was created, but the server's answer holds no token; create one with `certwright token create %s`", pos[0], pos[0])
	}
	toFile := *tokenOut != "" && *tokenOut != "-"
	if cf.json {
		if res.Token != nil && toFile {
			if err := r.deliverToken(*res.Token, *tokenOut, r.stderr); err != nil {
				return err
			}
			res.Token.Token = ""
		} else if res.Token != nil {
			fmt.Fprintf(r.stderr, "The token in the answer will not be shown again.\n")
		}
		return printJSON(r.stdout, res)
	}
	// The token alone goes to stdout, so that it can be captured; the rest
	// then goes to stderr.
	info := r.stdout
	if res.Token != nil && !toFile {
		info = r.stderr
	}
	fmt.Fprintf(info, "Created principal %s.\n", res.Principal.Name)
	if err := printPrincipal(info, res.Principal, r.now()); err != nil {
		return err
	}
	if res.Token != nil {
		return r.deliverToken(*res.Token, *tokenOut, info)
	}
	return nil
}

// printPrincipal prints a principal's fields, then its bindings,
// identities and tokens.
func printPrincipal(w io.Writer, p apitypes.Principal, now time.Time) error {
	fl := newFields(w)
	fl.add("Name", p.Name)
	fl.add("ID", p.ID)
	fl.add("Kind", p.Kind)
	fl.add("Description", p.Description)
	status := principalStatus(p)
	if p.DisabledAt != nil {
		status += " since " + showTime(*p.DisabledAt)
	}
	fl.add("Status", status)
	fl.add("Created", showTime(p.CreatedAt))
	fl.add("Created by", p.CreatedBy)
	if err := fl.flush(); err != nil {
		return err
	}
	if len(p.Bindings) > 0 {
		fmt.Fprintln(w, "\nRoles:")
		t := newTable(w, "  BINDING", "ROLE", "SCOPE", "CREATED", "BY")
		for _, b := range p.Bindings {
			t.row("  "+b.ID, b.Role, scopeString(b.Scope), tableTime(b.CreatedAt), bindingBy(b))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(p.Identities) > 0 {
		fmt.Fprintln(w, "\nIdentities (mTLS):")
		t := newTable(w, "  KIND", "VALUE", "ADDED")
		for _, id := range p.Identities {
			t.row("  "+id.Kind, id.Value, tableTime(id.CreatedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(p.Tokens) > 0 {
		fmt.Fprintln(w, "\nTokens:")
		if err := printTokens(w, p.Tokens, now, "  ", false); err != nil {
			return err
		}
	}
	return nil
}

func printTokens(w io.Writer, tokens []apitypes.Token, now time.Time, prefix string, withPrincipal bool) error {
	header := []string{prefix + "ID", "STATUS", "CREATED", "EXPIRES", "LAST USED", "DESCRIPTION"}
	if withPrincipal {
		header = slices.Insert(header, 1, "PRINCIPAL")
	}
	t := newTable(w, header...)
	for _, tok := range tokens {
		expires := tableTimePtr(tok.ExpiresAt)
		if tok.ExpiresAt == nil {
			expires = "never"
		}
		row := []string{prefix + tok.ID, tokenStatus(tok, now), tableTime(tok.CreatedAt), expires, tableTimePtr(tok.LastUsedAt), tok.Description}
		if withPrincipal {
			row = slices.Insert(row, 1, tok.Principal)
		}
		t.row(row...)
	}
	return t.flush()
}

func runPrincipalList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ListPrincipals(ctx)
	if err != nil {
		return err
	}
	list := res.Principals
	if cf.json {
		return printList(r.stdout, "principals", list)
	}
	if len(list) == 0 {
		fmt.Fprintln(r.stderr, "No principals.")
		return nil
	}
	now := r.now()
	t := newTable(r.stdout, "NAME", "KIND", "STATUS", "ROLES", "IDENTITIES", "ACTIVE TOKENS", "CREATED")
	for _, p := range list {
		var roles []string
		for _, b := range p.Bindings {
			role := b.Role
			if scopeString(b.Scope) != "any" {
				role += "(scoped)"
			}
			roles = append(roles, role)
		}
		active := 0
		for _, tok := range p.Tokens {
			if tokenStatus(tok, now) == "active" {
				active++
			}
		}
		t.row(p.Name, p.Kind, principalStatus(p), strings.Join(roles, ","), strconv.Itoa(len(p.Identities)), strconv.Itoa(active), tableTime(p.CreatedAt))
	}
	return t.flush()
}

func runPrincipalShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal show")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.GetPrincipal(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	return printPrincipal(r.stdout, p, r.now())
}

func runPrincipalDisable(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal disable")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.DisablePrincipal(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	fmt.Fprintf(r.stdout, "Disabled principal %s; its tokens are revoked and its identities no longer authenticate.\n", p.Name)
	return nil
}

// identityArg reads the one of --uri, --dns and --email given.
func (r *runner) identityArg(f identityFlagValues) (apitypes.Identity, error) {
	given := 0
	for _, v := range []string{*f.uri, *f.dns, *f.email} {
		if v != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return apitypes.Identity{}, r.usagef("give one of --uri, --dns and --email")
	case *f.uri != "":
		uri := *f.uri
		u, err := url.Parse(uri)
		if err != nil || u.Scheme == "" || strings.ContainsAny(uri, " \t\r\n") {
			return apitypes.Identity{}, r.usagef("--uri %q is not an absolute URI such as spiffe://example.internal/app", uri)
		}
		return apitypes.Identity{Kind: "uri", Value: uri}, nil
	case *f.dns != "":
		dns := *f.dns
		if strings.Contains(dns, "://") || strings.ContainsAny(dns, " \t\r\n/@*") {
			return apitypes.Identity{}, r.usagef("--dns %q is not a DNS name such as app.example.internal", dns)
		}
		return apitypes.Identity{Kind: "dns", Value: strings.ToLower(strings.TrimSuffix(dns, "."))}, nil
	case *f.email != "":
		names, err := pki.ParseNames([]string{"email:" + *f.email})
		if err != nil || len(names.Emails) != 1 {
			return apitypes.Identity{}, r.usagef("--email %q is not a plain e-mail address such as alice@example.com", *f.email)
		}
		return apitypes.Identity{Kind: "email", Value: strings.ToLower(names.Emails[0])}, nil
	}
	return apitypes.Identity{}, r.usagef("give --uri URI, --dns NAME or --email ADDRESS")
}

// identityFlagValues are the flags naming an identity.
type identityFlagValues struct{ uri, dns, email *string }

func identityFlags(fs *flag.FlagSet) identityFlagValues {
	return identityFlagValues{
		uri:   fs.String("uri", "", "the client certificate's SAN `URI`, e.g. spiffe://example.internal/app"),
		dns:   fs.String("dns", "", "the client certificate's SAN DNS `NAME`"),
		email: fs.String("email", "", "the client certificate's SAN e-mail `ADDRESS`"),
	}
}

func runIdentityAdd(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal identity add")
	idf := identityFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	id, err := r.identityArg(idf)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	got, err := c.AddIdentity(ctx, pos[0], id)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, got)
	}
	fmt.Fprintf(r.stdout, "A client certificate with SAN %s %s authenticates as %s when it was issued to %s itself, or by its administrator after this registration; a certificate issued to anyone else (or by ACME) does not.\n",
		strings.ToUpper(got.Kind), got.Value, pos[0], pos[0])
	return nil
}

func runIdentityRemove(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("principal identity remove")
	idf := identityFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	id, err := r.identityArg(idf)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.RemoveIdentity(ctx, pos[0], id); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, map[string]any{"principal": pos[0], "removed": id})
	}
	fmt.Fprintf(r.stdout, "Removed identity %s %s from %s.\n", strings.ToUpper(id.Kind), id.Value, pos[0])
	return nil
}

func runTokenCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("token create")
	expires := fs.String("expires", "", "the token expires after `DURATION` (90d, 2w, 12h; default: never)")
	desc := fs.String("description", "", "free-text `DESCRIPTION`, e.g. where the token is used")
	out := fs.String("out", "", "write the token to a new `FILE` with mode 0600 instead of standard output")
	pos, err := r.parse(fs, args, "PRINCIPAL")
	if err != nil {
		return err
	}
	exp, err := r.expiresIn("expires", *expires)
	if err != nil {
		return err
	}
	if err := checkTokenFile(*out); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	tok, err := c.CreateToken(ctx, pos[0], apitypes.CreateTokenRequest{Description: *desc, ExpiresIn: exp})
	if err != nil {
		return err
	}
	if tok.Token == "" {
		return fmt.Errorf("the server's answer holds no token")
	}
	if cf.json {
		if *out != "" && *out != "-" {
			if err := r.deliverToken(tok, *out, r.stderr); err != nil {
				return err
			}
			tok.Token = ""
		} else {
			fmt.Fprintf(r.stderr, "The token in the answer will not be shown again.\n")
		}
		return printJSON(r.stdout, tok)
	}
	return r.deliverToken(tok, *out, r.stderr)
}

func runTokenList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("token list")
	c, pos, err := r.open(fs, cf, args, "[PRINCIPAL]")
	if err != nil {
		return err
	}
	defer c.close()
	var tokens []apitypes.Token
	if len(pos) == 1 {
		res, err := c.ListTokens(ctx, pos[0])
		if err != nil {
			return err
		}
		tokens = res.Tokens
	} else {
		// There is no route for every token: each principal carries its own.
		res, err := c.ListPrincipals(ctx)
		if err != nil {
			return err
		}
		for _, p := range res.Principals {
			for _, tok := range p.Tokens {
				if tok.Principal == "" {
					tok.Principal = p.Name
				}
				tokens = append(tokens, tok)
			}
		}
	}
	if cf.json {
		return printList(r.stdout, "tokens", tokens)
	}
	if len(tokens) == 0 {
		fmt.Fprintln(r.stderr, "No tokens.")
		return nil
	}
	return printTokens(r.stdout, tokens, r.now(), "", true)
}

func runTokenRevoke(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("token revoke")
	c, pos, err := r.open(fs, cf, args, "ID")
	if err != nil {
		return err
	}
	defer c.close()
	tok, err := c.RevokeToken(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, tok)
	}
	fmt.Fprintf(r.stdout, "Revoked token %s of %s at %s.\n", tok.ID, tok.Principal, showTimePtr(tok.RevokedAt))
	return nil
}

func runRoleList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ListRoles(ctx)
	if err != nil {
		return err
	}
	roles := res.Roles
	if cf.json {
		return printList(r.stdout, "roles", roles)
	}
	if len(roles) == 0 {
		fmt.Fprintln(r.stderr, "No roles.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "BUILT-IN", "PERMISSIONS", "DESCRIPTION")
	for _, role := range roles {
		builtin := "no"
		if role.Builtin {
			builtin = "yes"
		}
		t.row(role.Name, builtin, strings.Join(role.Permissions, ","), role.Description)
	}
	return t.flush()
}

func runRoleCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role create")
	var perms listFlag
	fs.Var(&perms, "permissions", "the role's `PERMISSIONS`, comma-separated (see below)")
	desc := fs.String("description", "", "free-text `DESCRIPTION`")
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if len(perms) == 0 {
		return r.usagef("--permissions is required")
	}
	for _, p := range perms {
		if !authz.Permission(p).Valid() {
			return r.usagef("--permissions: unknown permission %q", p)
		}
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	role, err := c.CreateRole(ctx, apitypes.Role{Name: pos[0], Description: *desc, Permissions: perms})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, role)
	}
	fmt.Fprintf(r.stdout, "Created role %s: %s.\n", role.Name, strings.Join(role.Permissions, ", "))
	return nil
}

func runRoleDelete(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role delete")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.DeleteRole(ctx, pos[0]); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusConflict {
			return &hintError{err, "the role is still bound: list its bindings with `certwright role bindings` and remove them with `certwright role unbind ID`"}
		}
		return err
	}
	if cf.json {
		return printJSON(r.stdout, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(r.stdout, "Deleted role %s.\n", pos[0])
	return nil
}

func runRoleBind(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role bind")
	var sf scopeFlags
	sf.register(fs)
	pos, err := r.parse(fs, args, "PRINCIPAL", "ROLE")
	if err != nil {
		return err
	}
	scope, err := r.scope(&sf)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	b, err := c.CreateBinding(ctx, apitypes.CreateBindingRequest{Principal: pos[0], Role: pos[1], Scope: scope})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, b)
	}
	fmt.Fprintf(r.stdout, "Bound role %s to %s (binding %s), scope: %s.\n", b.Role, b.Principal, b.ID, scopeString(b.Scope))
	return nil
}

func runRoleUnbind(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role unbind")
	c, pos, err := r.open(fs, cf, args, "BINDING_ID")
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.DeleteBinding(ctx, pos[0]); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(r.stdout, "Removed binding %s.\n", pos[0])
	return nil
}

func runRoleBindings(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("role bindings")
	principal := fs.String("principal", "", "only the bindings of principal `NAME`")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ListBindings(ctx, *principal)
	if err != nil {
		return err
	}
	list := res.Bindings
	if cf.json {
		return printList(r.stdout, "bindings", list)
	}
	if len(list) == 0 {
		fmt.Fprintln(r.stderr, "No bindings.")
		return nil
	}
	t := newTable(r.stdout, "ID", "PRINCIPAL", "ROLE", "SCOPE", "CREATED", "BY")
	for _, b := range list {
		t.row(b.ID, b.Principal, b.Role, scopeString(b.Scope), tableTime(b.CreatedAt), bindingBy(b))
	}
	return t.flush()
}

// bindingBy says who made a binding: its creator, and for one an identity
// provider's groups give, that provider (a sign-in replaces it).
func bindingBy(b apitypes.Binding) string {
	if p, ok := strings.CutPrefix(b.Source, "oidc:"); ok {
		return b.CreatedBy + " (groups at " + p + ")"
	}
	return b.CreatedBy
}
