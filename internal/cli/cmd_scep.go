package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func scepCommands() []*command {
	return []*command{
		{
			name: "create", summary: "create a SCEP provisioner (RFC 8894) served at /scep/NAME, issuing on one CA under one profile",
			args:    "NAME --ca CA --profile PROFILE --challenge static|dynamic [--challenge-file FILE] [--allow-legacy-crypto] [--json]",
			example: "certwright scep create mdm --ca issuing --profile client_auth --challenge dynamic",
			more: "static: every device sends the secret in --challenge-file (mode 0600, 16 to 255 printable characters);\n" +
				"the server keeps only a salted hash. dynamic: each device needs a one-time challenge from\n" +
				"`certwright scep challenge --provisioner NAME` (the model Intune and Jamf use).\n" +
				"The provisioner gets an RA certificate from its CA (RSA, the server's own key) and enrols devices as the\n" +
				"machine principal scep:NAME (role issuer, scoped to the CA and profile).\n" +
				legacyCryptoHelp,
			run: runSCEPCreate,
		},
		{name: "list", summary: "list SCEP provisioners and their URLs", args: "[--json]", example: "certwright scep list", run: runSCEPList},
		{name: "show", summary: "show one SCEP provisioner", args: "NAME [--json]", example: "certwright scep show mdm",
			run: scepNamed("scep show", http.MethodGet, "", nil)},
		{
			name: "update", summary: "change a SCEP provisioner's profile, static challenge or legacy crypto switch",
			args:    "NAME [--profile PROFILE] [--challenge-file FILE] [--allow-legacy-crypto=true|false] [--json]",
			example: "certwright scep update mdm --challenge-file new-secret.txt",
			more:    legacyCryptoHelp,
			run:     runSCEPUpdate,
		},
		{
			name: "rotate-ra", summary: "issue a SCEP provisioner a new RA certificate (when the old one expires or was revoked)",
			args: "NAME [--json]", example: "certwright scep rotate-ra mdm",
			more: "The provisioner, its principal and the certificates it issued stay: devices fetch the new RA with GetCACert\n" +
				"and renew with RenewalReq as before; devices that pin the RA fingerprint need the new RA SHA-256.\n" +
				"The old RA certificate is not revoked: if its key is compromised, revoke it with certwright cert revoke.",
			run: scepNamed("scep rotate-ra", http.MethodPost, "rotate-ra", nil)},
		{name: "disable", summary: "disable a SCEP provisioner: it answers devices with 403 until enabled", args: "NAME [--json]",
			example: "certwright scep disable mdm", run: scepNamed("scep disable", http.MethodPost, "disable", nil)},
		{name: "enable", summary: "enable a disabled SCEP provisioner", args: "NAME [--json]",
			example: "certwright scep enable mdm", run: scepNamed("scep enable", http.MethodPost, "enable", nil)},
		{name: "delete", summary: "delete a disabled SCEP provisioner and revoke its RA certificate (the certificates it issued stay valid and on record)", args: "NAME [--json]",
			example: "certwright scep delete mdm", run: scepNamed("scep delete", http.MethodDelete, "", nil)},
		{
			name: "challenge", summary: "print a one-time challenge for a dynamic SCEP provisioner",
			args:    "--provisioner NAME [--ttl 1h] [--identity NAME] [--json]",
			example: "certwright scep challenge --provisioner mdm --ttl 1h --identity laptop-042",
			more: "The challenge works once, until it expires (--ttl, 1m to 168h). With --identity the CSR must ask for exactly\n" +
				"that name: its common name and every subject alternative name must be it. A reused challenge is refused and audited.",
			run: runSCEPChallenge,
		},
	}
}

// legacyCryptoHelp explains --allow-legacy-crypto.
const legacyCryptoHelp = "By default a provisioner refuses (badAlg) requests encrypted with DES or 3DES or signed with SHA-1\n" +
	"(MD5 is refused whatever the switch: such a message does not verify).\n" +
	"--allow-legacy-crypto admits them, for devices that cannot use AES and SHA-256 (Debian's scepclient 2.1 always\n" +
	"sends single DES and SHA-1): single DES is broken, so allow it only on a provisioner for such devices."

// maxChallengeFile bounds what is read of a static challenge file.
const maxChallengeFile = 1024

// readChallengeFile reads a static challenge, refusing a file others may
// read or that another user owns: the secret admits any device that
// knows it. The file is opened once, without following a symbolic link,
// and checked on the open descriptor, so that it cannot be swapped
// between the check and the read.
func readChallengeFile(path string) (string, error) {
	f, err := openSecretFile(path)
	if err != nil {
		return "", fmt.Errorf("challenge file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("challenge file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("challenge file %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if err := checkSecretFile(path, fi); err != nil {
		return "", fmt.Errorf("challenge file: %w", err)
	}
	data, err := readAllLimited(f, path, maxChallengeFile)
	if err != nil {
		return "", fmt.Errorf("challenge file: %w", err)
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

func runSCEPCreate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scep create")
	ca := fs.String("ca", "", "issue on `CA` (name or ID)")
	prof := fs.String("profile", "", "issue under `PROFILE`")
	mode := fs.String("challenge", "", "`MODE`: static or dynamic")
	file := fs.String("challenge-file", "", "static challenge `FILE` (mode 0600)")
	legacy := fs.Bool("allow-legacy-crypto", false, "admit devices that encrypt with DES or 3DES or sign with SHA-1")
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := r.required(fs, "ca", "profile", "challenge"); err != nil {
		return err
	}
	req := apitypes.CreateSCEPProvisionerRequest{Name: pos[0], CA: *ca, Profile: *prof, Challenge: *mode, AllowLegacyCrypto: *legacy}
	switch {
	case *mode == "static" && *file == "":
		return r.usagef("--challenge static needs --challenge-file FILE")
	case *mode == "dynamic" && *file != "":
		return r.usagef("--challenge-file is for --challenge static")
	case *mode != "static" && *mode != "dynamic":
		return r.usagef("--challenge %q: use static or dynamic", *mode)
	}
	if *file != "" {
		if req.StaticChallenge, err = readChallengeFile(*file); err != nil {
			return err
		}
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	p, err := c.SCEPProvisioner(ctx, http.MethodPost, "", "", req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	fmt.Fprintf(r.stdout, "Created SCEP provisioner %s.\n", p.Name)
	if err := printSCEPProvisioner(r.stdout, p); err != nil {
		return err
	}
	if p.Challenge == "dynamic" {
		fmt.Fprintf(r.stdout, "\nGive each device a challenge from: certwright scep challenge --provisioner %s\n", p.Name)
	}
	return nil
}

func runSCEPUpdate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scep update")
	prof := fs.String("profile", "", "issue under `PROFILE` from now on")
	file := fs.String("challenge-file", "", "replace the static challenge with the one in `FILE` (mode 0600)")
	legacy := fs.Bool("allow-legacy-crypto", false, "admit (true) or refuse (false) devices that encrypt with DES or 3DES or sign with SHA-1")
	var req apitypes.UpdateSCEPProvisionerRequest
	run := func(ctx context.Context, r *runner, fs *flag.FlagSet) error {
		if *prof != "" {
			req.Profile = prof
		}
		if *file != "" {
			s, err := readChallengeFile(*file)
			if err != nil {
				return err
			}
			req.StaticChallenge = &s
		}
		if isSet(fs, "allow-legacy-crypto") {
			req.AllowLegacyCrypto = legacy
		}
		if req.Profile == nil && req.StaticChallenge == nil && req.AllowLegacyCrypto == nil {
			return r.usagef("give --profile, --challenge-file or --allow-legacy-crypto=true|false")
		}
		return nil
	}
	return r.scepCall(ctx, fs, cf, args, http.MethodPatch, "", &req, run)
}

// scepNamed is a command calling method on one provisioner (action: the
// path after its name).
func scepNamed(name, method, action string, body any) func(context.Context, *runner, []string) error {
	return func(ctx context.Context, r *runner, args []string) error {
		fs, cf := newClientFlagSet(name)
		return r.scepCall(ctx, fs, cf, args, method, action, body, nil)
	}
}

// scepCall parses NAME and the flags, runs check (when set) and calls
// the provisioner route, printing what it answers.
func (r *runner) scepCall(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, args []string, method, action string, body any,
	check func(context.Context, *runner, *flag.FlagSet) error) error {
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	if check != nil {
		if err := check(ctx, r, fs); err != nil {
			return err
		}
	}
	p, err := c.SCEPProvisioner(ctx, method, pos[0], action, body)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, p)
	}
	if action == "rotate-ra" {
		fmt.Fprintf(r.stdout, "Rotated the RA certificate of SCEP provisioner %s.\n", p.Name)
	}
	if method == http.MethodDelete {
		fmt.Fprintf(r.stdout, "Deleted SCEP provisioner %s (%s); its principal %s is disabled and its RA certificate %s revoked. The certificates it issued stay valid and on record.\n",
			p.Name, p.ID, p.Principal, p.RASerial)
		return nil
	}
	if err := printSCEPProvisioner(r.stdout, p); err != nil {
		return err
	}
	warnSCEPRA(r.stderr, p, time.Now())
	return nil
}

// raWarnWithin is how soon before its RA expires scep show warns.
const raWarnWithin = 30 * 24 * time.Hour

// warnSCEPRA warns when p's RA certificate expires within raWarnWithin
// of now (or has expired): devices cannot enrol or renew without it.
func warnSCEPRA(w io.Writer, p apitypes.SCEPProvisioner, now time.Time) {
	if p.RANotAfter == nil || p.RANotAfter.Sub(now) > raWarnWithin {
		return
	}
	verb := "expires"
	if !now.Before(*p.RANotAfter) {
		verb = "expired"
	}
	fmt.Fprintf(w, "Warning: the RA certificate of %s %s on %s; devices cannot enrol or renew without it. Run: certwright scep rotate-ra %s\n",
		p.Name, verb, showTime(*p.RANotAfter), p.Name)
}

func printSCEPProvisioner(w io.Writer, p apitypes.SCEPProvisioner) error {
	fl := newFields(w)
	fl.add("Name", p.Name)
	fl.add("ID", p.ID)
	status := "enabled"
	if p.Disabled {
		status = "disabled since " + showTimePtr(p.DisabledAt) + " by " + p.DisabledBy
	}
	fl.add("Status", status)
	fl.add("CA", p.CA+" ("+p.CAID+")")
	fl.add("Profile", p.Profile)
	fl.add("Challenge", p.Challenge)
	legacy := "refused (AES and SHA-2 only)"
	if p.AllowLegacyCrypto {
		legacy = "allowed (DES, 3DES and SHA-1 admitted)"
	}
	fl.add("Legacy crypto", legacy)
	fl.add("Principal", p.Principal)
	fl.add("RA certificate", p.RASerial)
	fl.add("RA SHA-256", p.RASHA256)
	if p.RANotAfter != nil {
		fl.add("RA expires", showTime(*p.RANotAfter))
	}
	fl.add("URL", p.URL)
	fl.add("Created", showTime(p.CreatedAt)+" by "+p.CreatedBy)
	return fl.flush()
}

func runSCEPList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scep list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	list, err := c.ListSCEPProvisioners(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	if len(list.Provisioners) == 0 {
		fmt.Fprintln(r.stderr, "No SCEP provisioners; create one with `certwright scep create NAME --ca CA --profile PROFILE --challenge dynamic`.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "CA", "PROFILE", "CHALLENGE", "STATUS", "URL")
	for _, p := range list.Provisioners {
		status := "enabled"
		if p.Disabled {
			status = "disabled"
		}
		t.row(p.Name, p.CA, p.Profile, p.Challenge, status, p.URL)
	}
	return t.flush()
}

func runSCEPChallenge(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("scep challenge")
	prov := fs.String("provisioner", "", "the dynamic SCEP provisioner `NAME`")
	ttl := fs.Duration("ttl", time.Hour, "how long the challenge works (`DURATION`, 1m to 168h)")
	identity := fs.String("identity", "", "exactly the `NAME` the device's CSR may ask for (its CN and every SAN)")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	if err := r.required(fs, "provisioner"); err != nil {
		return err
	}
	ch, err := c.CreateSCEPChallenge(ctx, *prov, apitypes.CreateSCEPChallengeRequest{TTL: ttl.String(), Identity: *identity})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, ch)
	}
	fmt.Fprintln(r.stdout, ch.Challenge)
	fmt.Fprintf(r.stderr, "One-time challenge %s for %s, valid until %s. Enrol with:\n  scepclient -server-url %s -ca-fingerprint %s -challenge CHALLENGE -private-key device.key -certificate device.pem\n"+
		"(Debian's scepclient 2.1 sends DES and SHA-1: only a provisioner that allows legacy crypto accepts it.)\n",
		ch.ID, ch.Provisioner, showTime(ch.ExpiresAt), ch.URL, ch.RASHA256)
	return nil
}
