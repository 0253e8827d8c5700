package cli

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func acmeCommands() []*command {
	challenges := strings.Join(acme.ChallengeTypes(), ", ")
	return []*command{
		{
			name: "create", summary: "create an ACME provisioner: a directory issuing on one CA under one profile",
			args:    "NAME --ca CA --profile PROFILE [--challenges TYPE,...] [--allow-names PATTERN,...] [--require-eab] [--allow-subject-fields] [--terms-of-service URL] [--website URL] [--json]",
			example: "certwright acme create internal --ca issuing --profile web_server --allow-names '*.example.internal,10.0.0.0/8' --require-eab",
			more: "Challenge types: " + challenges + " (default: all).\n" +
				"--allow-names patterns: " + patternHelp + "; without it, orders may name whatever the profile allows.\n" +
				"With --require-eab, a new account must present a key from `certwright acme eab create`, and it acts with\n" +
				"that key's principal's roles; without it, anyone who can reach the directory may create an account.",
			run: runACMECreate,
		},
		{
			name: "list", summary: "list ACME provisioners and their directory URLs", args: "[--json]",
			example: "certwright acme list",
			run:     runACMEList,
		},
		{
			name: "show", summary: "show one ACME provisioner", args: "NAME [--json]",
			example: "certwright acme show internal",
			run:     runACMEShow,
		},
		{name: "eab", summary: "manage external account binding keys (RFC 8555 §7.3.4) of ACME provisioners", sub: []*command{
			{
				name: "create", summary: "create an external account binding key (its HMAC key is shown once)",
				args:    "--provisioner NAME [--principal P] [--description D] [--json]",
				example: "certwright acme eab create --provisioner internal --principal web-fleet --description \"web servers\"",
				more: "The key binds one ACME account, which then acts with --principal's roles and scopes (a machine principal);\n" +
					"without --principal the account has only the provisioner's authority.\n" +
					"The HMAC key is printed once, on standard output; pass it with the key ID to the ACME client.",
				run: runACMEEABCreate,
			},
			{
				name: "list", summary: "list a provisioner's external account binding keys (never their HMAC keys)",
				args:    "--provisioner NAME [--json]",
				example: "certwright acme eab list --provisioner internal",
				run:     runACMEEABList,
			},
			acmeEABRevokeCommand(),
		}},
		acmeUpdateCommand(),
		acmeStateCommand("disable"),
		acmeStateCommand("enable"),
		acmeDeleteCommand(),
		{
			name: "renew-now", summary: "ask ACME clients to renew matching certificates at their next renewal-info check",
			args:    "(--ca CA | --profile P | --san NAME | --spki HEX | --serial SERIAL)... [--json]",
			example: "certwright acme renew-now --ca issuing --san app.example.internal",
			more: "Moves the suggested renewal window (RFC 9773, ACME Renewal Information) of every unexpired, unrevoked\n" +
				"certificate matching all the selectors given to now. Clients that check renewal information renew at\n" +
				"their next check; others renew on their own schedule. Nothing is revoked.",
			run: runACMERenewNow,
		},
		{
			name: "renewal-info", summary: "show the renewal window ACME clients are told for a certificate (RFC 9773)",
			args:    "CERT.pem [--provisioner NAME] [--json]",
			example: "certwright acme renewal-info /etc/letsencrypt/live/app/cert.pem",
			more:    "Asks the provisioner's renewalInfo resource (default provisioner: default), as an ARI-aware client does.",
			run:     runACMERenewalInfo,
		},
	}
}

// absoluteURL checks a URL flag that ACME clients are shown.
func (r *runner) absoluteURL(flagName, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return r.usagef("--%s %q is not an http(s) URL such as https://example.internal/acme-terms", flagName, s)
	}
	return nil
}

// policyFlags are the provisioner policy flags acme create and acme
// update share.
type policyFlags struct {
	ca, profile, tos, website *string
	challenges, allow         listFlag
	requireEAB, subjectFields *bool
}

func registerPolicyFlags(fs *flag.FlagSet) *policyFlags {
	f := &policyFlags{}
	f.ca = fs.String("ca", "", "issue on `CA` (name or ID)")
	f.profile = fs.String("profile", "", "issue under `PROFILE`")
	fs.Var(&f.challenges, "challenges", "offer only these challenge `TYPES` (comma-separated or repeated; at creation the default is all)")
	fs.Var(&f.allow, "allow-names", "orders may name only identifiers matching `PATTERN` (comma-separated or repeated; none: what the profile allows)")
	f.requireEAB = fs.Bool("require-eab", false, "accounts must present an external account binding key")
	f.subjectFields = fs.Bool("allow-subject-fields", false, "keep the CSR's subject fields (O, OU, C, ...); by default certificates carry only a validated common name")
	f.tos = fs.String("terms-of-service", "", "terms of service `URL` shown to ACME clients")
	f.website = fs.String("website", "", "`URL` of a page about this ACME service")
	return f
}

// check checks the flags before anything is sent.
func (f *policyFlags) check(r *runner) error {
	for _, c := range f.challenges {
		if !slices.Contains(acme.ChallengeTypes(), c) {
			return r.usagef("--challenges: unknown challenge type %q (want %s)", c, strings.Join(acme.ChallengeTypes(), ", "))
		}
	}
	for _, p := range f.allow {
		if err := authz.ValidatePattern(p); err != nil {
			return r.usagef("--allow-names: %s", strings.TrimPrefix(err.Error(), "authz: "))
		}
	}
	if err := r.absoluteURL("terms-of-service", *f.tos); err != nil {
		return err
	}
	return r.absoluteURL("website", *f.website)
}

func runACMECreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme create")
	f := registerPolicyFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if strings.TrimSpace(pos[0]) == "" {
		return r.usagef("NAME must not be empty")
	}
	if err := r.required(fs, "ca", "profile"); err != nil {
		return err
	}
	if err := f.check(r); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.CreateProvisioner(ctx, apitypes.CreateProvisionerRequest{
		Name: pos[0], CA: *f.ca, Profile: *f.profile, Challenges: f.challenges, AllowNames: f.allow,
		RequireEAB: *f.requireEAB, AllowSubjectFields: *f.subjectFields, TermsOfService: *f.tos, Website: *f.website,
	})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	fmt.Fprintf(r.stdout, "Created ACME provisioner %s.\n", p.Name)
	if err := printProvisioner(r.stdout, p); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "\nPoint ACME clients at the directory URL, e.g. certbot --server %s or lego --server %s.\n", p.DirectoryURL, p.DirectoryURL)
	if p.RequireEAB {
		fmt.Fprintf(r.stdout, "Accounts need an external account binding key: certwright acme eab create --provisioner %s\n", p.Name)
	}
	return nil
}

func eabLabel(required bool) string {
	if required {
		return "required"
	}
	return "not required"
}

func printProvisioner(w io.Writer, p apitypes.Provisioner) error {
	fl := newFields(w)
	fl.add("Name", p.Name)
	fl.add("ID", p.ID)
	status := provisionerStatus(p)
	if p.Disabled {
		status += " since " + showTimePtr(p.DisabledAt)
		if p.DisabledBy != "" {
			status += " by " + p.DisabledBy
		}
		status += ": no new accounts, orders or certificates; revocation and renewal information go on"
	}
	fl.add("Status", status)
	ca := p.CA
	if ca == "" {
		ca = p.CAID
	} else if p.CAID != "" {
		ca += " (" + p.CAID + ")"
	}
	fl.add("CA", ca)
	fl.add("Profile", p.Profile)
	fl.add("Challenges", strings.Join(p.Challenges, ", "))
	names := strings.Join(p.AllowNames, ", ")
	if names == "" {
		names = "any the profile allows"
	}
	fl.add("Allowed names", names)
	fl.add("External account binding", eabLabel(p.RequireEAB))
	if p.AllowSubjectFields {
		fl.add("Subject fields", "kept from the CSR")
	} else {
		fl.add("Subject fields", "common name only")
	}
	fl.add("Terms of service", p.TermsOfService)
	fl.add("Website", p.Website)
	fl.add("Created", showTime(p.CreatedAt))
	fl.add("Created by", p.CreatedBy)
	fl.add("Directory URL", p.DirectoryURL)
	return fl.flush()
}

func runACMEList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	list, err := c.ListProvisioners(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		if list.Provisioners == nil {
			list.Provisioners = []apitypes.Provisioner{}
		}
		return printJSON(r.stdout, list)
	}
	if len(list.Provisioners) == 0 {
		fmt.Fprintln(r.stderr, "No ACME provisioners; create one with `certwright acme create NAME --ca CA --profile PROFILE`.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "CA", "PROFILE", "CHALLENGES", "EAB", "STATUS", "DIRECTORY URL")
	for _, p := range list.Provisioners {
		ca := p.CA
		if ca == "" {
			ca = p.CAID
		}
		t.row(p.Name, ca, p.Profile, strings.Join(p.Challenges, ","), eabLabel(p.RequireEAB), provisionerStatus(p), p.DirectoryURL)
	}
	return t.flush()
}

func runACMEShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme show")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.GetProvisioner(ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	return printProvisioner(r.stdout, p)
}

func runACMEEABCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme eab create")
	prov := fs.String("provisioner", "", "the ACME provisioner `NAME` the key registers an account with")
	principal := fs.String("principal", "", "the bound account acts with this machine `PRINCIPAL`'s roles and scopes (name or ID; default: none, the account has only the provisioner's authority)")
	desc := fs.String("description", "", "free-text `DESCRIPTION`")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "provisioner"); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	k, err := c.CreateEABKey(ctx, *prov, apitypes.CreateEABKeyRequest{Principal: *principal, Description: *desc})
	if err != nil {
		return err
	}
	if cf.json {
		fmt.Fprintln(r.stderr, "The HMAC key in the answer will not be shown again.")
		return printJSON(r.stdout, k)
	}
	if k.KeyID == "" || k.HMACKey == "" {
		return fmt.Errorf("the server's answer holds no key ID or HMAC key; create another key with `certwright acme eab create --provisioner %s`", *prov)
	}
	fmt.Fprintf(r.stdout, "External account binding key for ACME provisioner %s", k.Provisioner)
	if k.Principal != "" {
		fmt.Fprintf(r.stdout, " (the account acts as principal %s)", k.Principal)
	}
	fmt.Fprintln(r.stdout, ":")
	fl := newFields(r.stdout)
	fl.add("  Key ID", k.KeyID)
	fl.add("  HMAC key", k.HMACKey)
	if err := fl.flush(); err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, "The HMAC key will not be shown again. It binds one account; register it with, for example:")
	fmt.Fprintf(r.stdout, "  lego --server %s --eab --kid %s --hmac %s --email ops@example.internal --domains app.example.internal run\n", k.DirectoryURL, k.KeyID, k.HMACKey)
	fmt.Fprintf(r.stdout, "  certbot register --server %s --eab-kid %s --eab-hmac-key %s\n", k.DirectoryURL, k.KeyID, k.HMACKey)
	return nil
}

func runACMEEABList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme eab list")
	prov := fs.String("provisioner", "", "the ACME provisioner `NAME`")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "provisioner"); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	list, err := c.ListEABKeys(ctx, *prov)
	if err != nil {
		return err
	}
	if cf.json {
		if list.Keys == nil {
			list.Keys = []apitypes.EABKey{}
		}
		return printJSON(r.stdout, list)
	}
	if len(list.Keys) == 0 {
		fmt.Fprintf(r.stderr, "No external account binding keys for %s; create one with `certwright acme eab create --provisioner %s`.\n", *prov, *prov)
		return nil
	}
	t := newTable(r.stdout, "KEY ID", "PRINCIPAL", "STATUS", "ACCOUNT", "CREATED", "BY", "DESCRIPTION")
	for _, k := range list.Keys {
		principal := k.Principal
		if principal == "" {
			principal = k.PrincipalID
		}
		status := "unused"
		switch {
		case k.RevokedAt != nil:
			status = "revoked " + tableTimePtr(k.RevokedAt)
		case k.AccountID != "":
			status = "bound " + tableTimePtr(k.BoundAt)
		}
		t.row(k.ID, principal, strings.TrimSpace(status), k.AccountID, tableTime(k.CreatedAt), k.CreatedBy, k.Description)
	}
	return t.flush()
}

func runACMERenewNow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme renew-now")
	var req apitypes.RenewNowRequest
	fs.StringVar(&req.CA, "ca", "", "certificates issued by `CA` (name or ID)")
	fs.StringVar(&req.Profile, "profile", "", "certificates issued under `PROFILE`")
	fs.StringVar(&req.SAN, "san", "", "certificates with the subject alternative `NAME` (exact, case-insensitive)")
	fs.StringVar(&req.SPKISHA256, "spki", "", "certificates for the public key whose SubjectPublicKeyInfo has SHA-256 `HEX`")
	serial := fs.String("serial", "", "the certificate with `SERIAL` (hex)")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if req.SPKISHA256 != "" {
		h := strings.ToLower(strings.ReplaceAll(req.SPKISHA256, ":", ""))
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return r.usagef("--spki %q: want the SHA-256 of the SubjectPublicKeyInfo as 64 hex digits", req.SPKISHA256)
		}
		req.SPKISHA256 = h
	}
	if *serial != "" {
		s, err := r.serialArg(*serial)
		if err != nil {
			return err
		}
		req.Serial = s
	}
	if req == (apitypes.RenewNowRequest{}) {
		return r.usagef("give at least one selector: --ca, --profile, --san, --spki or --serial")
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.RenewNow(ctx, req)
	if err != nil {
		return err
	}
	if cf.json {
		if res.Serials == nil {
			res.Serials = []string{}
		}
		return printJSON(r.stdout, res)
	}
	switch res.Count {
	case 0:
		fmt.Fprintln(r.stdout, "No unexpired, unrevoked certificate matches; nothing changed.")
		return nil
	case 1:
		fmt.Fprintln(r.stdout, "1 certificate will be renewed by ARI-aware clients at their next check:")
	default:
		fmt.Fprintf(r.stdout, "%d certificates will be renewed by ARI-aware clients at their next check:\n", res.Count)
	}
	for _, s := range res.Serials {
		fmt.Fprintln(r.stdout, s)
	}
	return nil
}
