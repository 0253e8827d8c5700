package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func estCommands() []*command {
	return []*command{
		{
			name: "create", summary: "create an EST provisioner: /.well-known/est/NAME/ issuing on one CA under one profile",
			args:    "NAME --ca CA --profile PROFILE --auth client-cert|basic|any|both [--bootstrap-ca FILE] [--identity serial|serial:.SUFFIX|san:PATTERN] [--allow-identities FILE] [--serverkeygen] [--reenroll-grace 168h] [--json]",
			example: "certwright est create devices --ca issuing --profile internal_service --auth any --bootstrap-ca idevid-ca.pem",
			more: "--auth client-cert: devices present an IDevID chaining to --bootstrap-ca (the manufacturer CA bundle, PEM);\n" +
				"basic: devices send HTTP Basic identity:secret with a one-time secret from `certwright est secret create`;\n" +
				"any: either (a device presenting both must pass both, for one identity; a client certificate that is no IDevID\n" +
				"is ignored next to a valid secret); both: an IDevID and a one-time secret, for one identity.\n" +
				"--identity says what of an IDevID the device may enrol for: serial (its subject serialNumber, the default;\n" +
				"one word without dots), serial:.SUFFIX (the serial, lowercased, as one DNS label under SUFFIX, e.g.\n" +
				"serial:.devices.example.com) or san:PATTERN (its first DNS name matching PATTERN, e.g. san:*.devices.example.com;\n" +
				"never a wildcard name). The CSR's common name and every subject alternative name must be that identity.\n" +
				"--allow-identities FILE (one identity a line, # comments) limits the identities enrolled, from IDevIDs and\n" +
				"secrets alike; `--allow-identities ''` on update lifts the list.\n" +
				"simplereenroll takes the current certificate as TLS client certificate, also for --reenroll-grace after it\n" +
				"expired (default 168h). --serverkeygen serves /serverkeygen (the key comes back over TLS as PKCS#8).\n" +
				"A provisioner named default is also served at /.well-known/est/.",
			run: runESTCreate,
		},
		{name: "list", summary: "list EST provisioners and their URLs", args: "[--json]", example: "certwright est list", run: runESTList},
		{name: "show", summary: "show one EST provisioner", args: "NAME [--json]", example: "certwright est show devices", run: runESTShow},
		{
			name: "update", summary: "change an EST provisioner's CA, profile, authentication or key generation",
			args:    "NAME [--ca CA] [--profile P] [--auth MODE] [--bootstrap-ca FILE] [--identity serial|serial:.SUFFIX|san:PATTERN] [--allow-identities FILE] [--serverkeygen=true|false] [--reenroll-grace D] [--json]",
			example: "certwright est update devices --reenroll-grace 72h",
			more:    "Only the flags given change; each is checked as `est create` checks it. Changes apply to the next request.",
			run:     runESTUpdate,
		},
		estStateCommand("disable", "stop an EST provisioner enrolling devices (cacerts and csrattrs go on)"),
		estStateCommand("enable", "let a disabled EST provisioner enrol devices again"),
		estStateCommand("delete", "delete a disabled EST provisioner and its enrolment secrets (its certificates stay on record)"),
		{name: "secret", summary: "manage one-time enrolment secrets (HTTP Basic) of EST provisioners", sub: []*command{
			{
				name: "create", summary: "create a one-time enrolment secret for one device identity (shown once)",
				args:    "--provisioner NAME --identity ID [--ttl 24h] [--json]",
				example: "certwright est secret create --provisioner devices --identity dev-0001.devices.example.com --ttl 24h",
				more: "The device enrols once with HTTP Basic ID:SECRET (curl --user ID:SECRET); its CSR must be for ID.\n" +
					"The secret is printed once on standard output; the server keeps only its SHA-256. It expires after --ttl\n" +
					"(1m to 720h) and works once: a second use is refused.",
				run: runESTSecretCreate,
			},
			{name: "list", summary: "list a provisioner's enrolment secrets (never the secrets)", args: "--provisioner NAME [--json]",
				example: "certwright est secret list --provisioner devices", run: runESTSecretList},
			{name: "revoke", summary: "revoke an unused enrolment secret (a leaked one authenticates nothing)", args: "--provisioner NAME ID [--json]",
				example: "certwright est secret revoke --provisioner devices 0123456789abcdef", run: runESTSecretRevoke,
				more: "ID is the secret's ID (the part after est_ in the secret, or from `certwright est secret list`). A used\n" +
					"secret cannot be revoked: revoke the certificate it enrolled instead (certwright cert revoke)."},
		}},
	}
}

// estFlags are the flags est create and est update share.
type estFlags struct {
	ca, profile, auth, bootstrap, identity, grace, allow *string
	keygen                                               *bool
}

func registerESTFlags(fs *flag.FlagSet) *estFlags {
	return &estFlags{
		ca:        fs.String("ca", "", "issue on `CA` (name or ID)"),
		profile:   fs.String("profile", "", "issue under `PROFILE`"),
		auth:      fs.String("auth", "", "device authentication: `client-cert, basic, any or both`"),
		bootstrap: fs.String("bootstrap-ca", "", "manufacturer (IDevID) CA bundle `FILE` (PEM)"),
		identity:  fs.String("identity", "", "what of an IDevID a device enrols for: `serial, serial:.SUFFIX or san:PATTERN`"),
		allow:     fs.String("allow-identities", "", "enrol only the identities listed in `FILE` (one a line, # comments)"),
		grace:     fs.String("reenroll-grace", "", "re-enrolment with an expired certificate is allowed for `DURATION` after expiry"),
		keygen:    fs.Bool("serverkeygen", false, "serve /serverkeygen (server-generated keys)"),
	}
}

// maxBootstrapFile bounds the bootstrap bundle read from disk.
const maxBootstrapFile = 256 << 10

func (f *estFlags) bundle() (string, error) {
	b, err := readLimited(*f.bootstrap, maxBootstrapFile)
	if err != nil {
		return "", fmt.Errorf("--bootstrap-ca: %w", err)
	}
	return string(b), nil
}

// maxAllowFile bounds the identity allow-list read from disk.
const maxAllowFile = 4 << 20

// allowList reads the identity allow-list file: one identity a line,
// blank lines and # comments skipped.
func (f *estFlags) allowList() ([]string, error) {
	if *f.allow == "" {
		return []string{}, nil
	}
	b, err := readLimited(*f.allow, maxAllowFile)
	if err != nil {
		return nil, fmt.Errorf("--allow-identities: %w", err)
	}
	ids := []string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ids = append(ids, line)
		}
	}
	return ids, nil
}

func (r *runner) duration(flagName, s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.ParseDuration(s); err != nil {
		return r.usagef("--%s %q: give a duration such as 24h or 168h", flagName, s)
	}
	return nil
}

func runESTCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est create")
	f := registerESTFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := r.required(fs, "ca", "profile", "auth"); err != nil {
		return err
	}
	if err := r.duration("reenroll-grace", *f.grace); err != nil {
		return err
	}
	req := apitypes.CreateESTProvisionerRequest{Name: pos[0], CA: *f.ca, Profile: *f.profile, Auth: *f.auth,
		IdentityFrom: *f.identity, ServerKeyGen: *f.keygen, ReenrollGrace: *f.grace}
	if *f.bootstrap != "" {
		if req.BootstrapPEM, err = f.bundle(); err != nil {
			return err
		}
	}
	if req.AllowedIdentities, err = f.allowList(); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	var p apitypes.ESTProvisioner
	if err := c.postJSON(ctx, "/api/v1/est/provisioners", req, &p); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	fmt.Fprintf(r.stdout, "Created EST provisioner %s.\n", p.Name)
	if err := printESTProvisioner(r.stdout, p); err != nil {
		return err
	}
	if p.Auth != "client-cert" {
		fmt.Fprintf(r.stdout, "\nGive each device a one-time secret: certwright est secret create --provisioner %s --identity ID\n", p.Name)
	}
	return nil
}

func printESTProvisioner(w io.Writer, p apitypes.ESTProvisioner) error {
	fl := newFields(w)
	fl.add("Name", p.Name)
	fl.add("ID", p.ID)
	status := "enabled"
	if p.Disabled {
		status = "disabled since " + showTimePtr(p.DisabledAt) + " by " + p.DisabledBy + ": no enrolments"
	}
	fl.add("Status", status)
	fl.add("CA", p.CA+" ("+p.CAID+")")
	fl.add("Profile", p.Profile)
	fl.add("Authentication", p.Auth)
	fl.add("Bootstrap CAs", strings.Join(p.BootstrapCAs, "; "))
	fl.add("Identity from IDevID", p.IdentityFrom)
	allowed := "any identity"
	if n := len(p.AllowedIdentities); n > 0 {
		allowed = fmt.Sprintf("%d listed identities", n)
	}
	fl.add("Identity allow-list", allowed)
	keygen := "no"
	if p.ServerKeyGen {
		keygen = "yes"
	}
	fl.add("Server key generation", keygen)
	fl.add("Re-enrolment grace", p.ReenrollGrace)
	fl.add("Created", showTime(p.CreatedAt))
	fl.add("Created by", p.CreatedBy)
	fl.add("URL", p.URL)
	return fl.flush()
}

func runESTList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	var list apitypes.ESTProvisionerList
	if err := c.getJSON(ctx, "/api/v1/est/provisioners", nil, &list); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	if len(list.Provisioners) == 0 {
		fmt.Fprintln(r.stderr, "No EST provisioners; create one with `certwright est create NAME --ca CA --profile PROFILE --auth MODE`.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "CA", "PROFILE", "AUTH", "KEYGEN", "STATUS", "URL")
	for _, p := range list.Provisioners {
		status, keygen := "enabled", "no"
		if p.Disabled {
			status = "disabled"
		}
		if p.ServerKeyGen {
			keygen = "yes"
		}
		t.row(p.Name, p.CA, p.Profile, p.Auth, keygen, status, p.URL)
	}
	return t.flush()
}

func runESTShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est show")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	var p apitypes.ESTProvisioner
	if err := c.getJSON(ctx, "/api/v1/est/provisioners/"+seg(pos[0]), nil, &p); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	return printESTProvisioner(r.stdout, p)
}

func runESTUpdate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est update")
	f := registerESTFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	var req apitypes.UpdateESTProvisionerRequest
	for _, s := range []struct {
		flag string
		v    *string
		dst  **string
	}{{"ca", f.ca, &req.CA}, {"profile", f.profile, &req.Profile}, {"auth", f.auth, &req.Auth}, {"identity", f.identity, &req.IdentityFrom}, {"reenroll-grace", f.grace, &req.ReenrollGrace}} {
		if isSet(fs, s.flag) {
			*s.dst = s.v
		}
	}
	if err := r.duration("reenroll-grace", *f.grace); err != nil {
		return err
	}
	if isSet(fs, "serverkeygen") {
		req.ServerKeyGen = f.keygen
	}
	if isSet(fs, "bootstrap-ca") {
		b := ""
		if *f.bootstrap != "" {
			if b, err = f.bundle(); err != nil {
				return err
			}
		}
		req.BootstrapPEM = &b
	}
	if isSet(fs, "allow-identities") {
		ids, err := f.allowList()
		if err != nil {
			return err
		}
		req.AllowedIdentities = &ids
	}
	if req == (apitypes.UpdateESTProvisionerRequest{}) {
		return r.usagef("nothing to change: give at least one of --ca, --profile, --auth, --bootstrap-ca, --identity, --allow-identities, --serverkeygen and --reenroll-grace")
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	var res apitypes.UpdatedESTProvisioner
	if _, err := c.request(ctx, http.MethodPatch, "/api/v1/est/provisioners/"+seg(pos[0]), nil, body, "application/json", &res); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(r.stdout, "EST provisioner %s already has these settings; nothing changed.\n", res.Provisioner.Name)
		return nil
	}
	fmt.Fprintf(r.stdout, "Updated EST provisioner %s:\n", res.Provisioner.Name)
	fl := newFields(r.stdout)
	for _, ch := range res.Changes {
		fl.add("  "+ch.Field, changeValue(ch.From)+" -> "+changeValue(ch.To))
	}
	return fl.flush()
}

func estStateCommand(action, summary string) *command {
	return &command{
		name: action, summary: summary, args: "NAME [--json]",
		example: "certwright est " + action + " devices",
		run: func(ctx context.Context, r *runner, args []string) error {
			fs, cf := newClientFlagSet("est " + action)
			c, pos, err := r.open(fs, cf, args, "NAME")
			if err != nil {
				return err
			}
			defer c.close()
			method, path := http.MethodPost, "/api/v1/est/provisioners/"+seg(pos[0])+"/"+action
			if action == "delete" {
				method, path = http.MethodDelete, "/api/v1/est/provisioners/"+seg(pos[0])
			}
			var p apitypes.ESTProvisioner
			if _, err := c.request(ctx, method, path, nil, nil, "", &p); err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, p)
			}
			msg := map[string]string{
				"disable": "Disabled EST provisioner %s: it enrols no devices until `certwright est enable %s`.\n",
				"enable":  "Enabled EST provisioner %s: devices can enrol again (%s).\n",
				"delete":  "Deleted EST provisioner %s and its enrolment secrets (%s); the certificates it issued stay valid and on record.\n",
			}[action]
			second := p.Name
			if action != "disable" {
				second = p.URL
				if action == "delete" {
					second = p.ID
				}
			}
			fmt.Fprintf(r.stdout, msg, p.Name, second)
			return nil
		},
	}
}

func runESTSecretCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est secret create")
	prov := fs.String("provisioner", "", "EST provisioner `NAME`")
	identity := fs.String("identity", "", "the device `ID` the secret enrols (its CSR must be for ID)")
	ttl := fs.String("ttl", "24h", "the secret expires after `DURATION` (1m to 720h)")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "provisioner", "identity"); err != nil {
		return err
	}
	if err := r.duration("ttl", *ttl); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	var out apitypes.NewESTSecret
	if err := c.postJSON(ctx, "/api/v1/est/provisioners/"+seg(*prov)+"/secrets", apitypes.CreateESTSecretRequest{Identity: *identity, TTL: *ttl}, &out); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, out)
	}
	fmt.Fprintln(r.stdout, out.Secret)
	fmt.Fprintf(r.stderr, "One-time enrolment secret %s for %s on EST provisioner %s, valid until %s; shown once.\n", out.ID, out.Identity, out.Provisioner, showTime(out.ExpiresAt))
	fmt.Fprintf(r.stderr, "Enrol with: curl --user '%s:SECRET' --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' %ssimpleenroll\n", out.Identity, out.URL)
	return nil
}

func runESTSecretList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est secret list")
	prov := fs.String("provisioner", "", "EST provisioner `NAME`")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	if *prov == "" {
		return r.usagef("--provisioner is required")
	}
	var list apitypes.ESTSecretList
	if err := c.getJSON(ctx, "/api/v1/est/provisioners/"+seg(*prov)+"/secrets", nil, &list); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	t := newTable(r.stdout, "ID", "IDENTITY", "STATUS", "EXPIRES", "USED", "CREATED BY")
	for _, s := range list.Secrets {
		t.row(s.ID, s.Identity, s.Status, showTime(s.ExpiresAt), showTimePtr(s.UsedAt), s.CreatedBy)
	}
	return t.flush()
}

func runESTSecretRevoke(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("est secret revoke")
	prov := fs.String("provisioner", "", "EST provisioner `NAME`")
	c, pos, err := r.open(fs, cf, args, "ID")
	if err != nil {
		return err
	}
	defer c.close()
	if *prov == "" {
		return r.usagef("--provisioner is required")
	}
	var out apitypes.ESTSecret
	if _, err := c.request(ctx, http.MethodPost, "/api/v1/est/provisioners/"+seg(*prov)+"/secrets/"+seg(pos[0])+"/revoke", nil, nil, "", &out); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, out)
	}
	fmt.Fprintf(r.stdout, "Revoked enrolment secret %s (identity %s) on EST provisioner %s: it enrols no device.\n", out.ID, out.Identity, *prov)
	return nil
}
