package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/certwright/certwright/internal/web/apitypes"
)

func provisionerStatus(p apitypes.Provisioner) string {
	if p.Disabled {
		return "disabled"
	}
	return "enabled"
}

func acmeUpdateCommand() *command {
	return &command{
		name: "update", summary: "change an ACME provisioner's CA, profile, challenges, allowed names or account rules",
		args:    "NAME [--ca CA] [--profile PROFILE] [--challenges TYPE,...] [--allow-names PATTERN,...] [--require-eab=true|false] [--allow-subject-fields=true|false] [--terms-of-service URL] [--website URL] [--json]",
		example: "certwright acme update internal --allow-names '*.example.internal' --require-eab",
		more: "Only the flags given change; each is checked as `acme create` checks it. --allow-names '' lifts the name\n" +
			"limit (orders may name what the profile allows). Changes apply at once to orders already open: finalization\n" +
			"uses the provisioner as it is then. With --require-eab, accounts made without a key can no longer order.\n" +
			"Dropping a challenge type stops it for pending authorizations too, and names it proved are proved again.",
		run: runACMEUpdate,
	}
}

func runACMEUpdate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("acme update")
	f := registerPolicyFlags(fs)
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	req, err := f.update(r, fs)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.UpdateProvisioner(ctx, pos[0], req)
	if err != nil {
		return err
	}
	if cf.json {
		if res.Changes == nil {
			res.Changes = []apitypes.ProvisionerChange{}
		}
		return printJSON(r.stdout, res)
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(r.stdout, "ACME provisioner %s already has these settings; nothing changed.\n", res.Name)
		return nil
	}
	fmt.Fprintf(r.stdout, "Updated ACME provisioner %s:\n", res.Name)
	fl := newFields(r.stdout)
	for _, ch := range res.Changes {
		fl.add("  "+ch.Field, changeValue(ch.From)+" -> "+changeValue(ch.To))
	}
	return fl.flush()
}

// update is the partial update the flags given on the command line ask
// for, checked before anything is sent.
func (f *policyFlags) update(r *runner, fs *flag.FlagSet) (apitypes.UpdateProvisionerRequest, error) {
	var req apitypes.UpdateProvisionerRequest
	for _, s := range []struct {
		flag, what string
		v          *string
		dst        **string
	}{{"ca", "a CA", f.ca, &req.CA}, {"profile", "a profile", f.profile, &req.Profile}} {
		if isSet(fs, s.flag) {
			if strings.TrimSpace(*s.v) == "" {
				return req, r.usagef("--%s must name %s", s.flag, s.what)
			}
			*s.dst = s.v
		}
	}
	if isSet(fs, "challenges") {
		if len(f.challenges) == 0 {
			return req, r.usagef("--challenges must name at least one challenge type")
		}
		req.Challenges = (*[]string)(&f.challenges)
	}
	if isSet(fs, "allow-names") {
		names := append([]string{}, f.allow...)
		req.AllowNames = &names
	}
	if isSet(fs, "require-eab") {
		req.RequireEAB = f.requireEAB
	}
	if isSet(fs, "allow-subject-fields") {
		req.AllowSubjectFields = f.subjectFields
	}
	if isSet(fs, "terms-of-service") {
		req.TermsOfService = f.tos
	}
	if isSet(fs, "website") {
		req.Website = f.website
	}
	if req == (apitypes.UpdateProvisionerRequest{}) {
		return req, r.usagef("nothing to change: give at least one of --ca, --profile, --challenges, --allow-names, --require-eab, --allow-subject-fields, --terms-of-service and --website")
	}
	return req, f.check(r)
}

// changeValue shows one side of a change: lists comma-separated, empty
// values as (none).
func changeValue(v any) string {
	var s string
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		s = strings.Join(parts, ", ")
	case nil:
	default:
		s = fmt.Sprint(x)
	}
	if s == "" {
		return "(none)"
	}
	return s
}

func acmeStateCommand(action string) *command {
	cmd := &command{
		name: action, args: "NAME [--json]",
		example: "certwright acme " + action + " internal",
		run: func(ctx context.Context, r *runner, args []string) error {
			fs, cf := newClientFlagSet("acme " + action)
			c, pos, err := r.open(fs, cf, args, "NAME")
			if err != nil {
				return err
			}
			defer c.close()
			p, err := c.SetProvisionerState(ctx, pos[0], action)
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, p)
			}
			if action == "disable" {
				fmt.Fprintf(r.stdout, "Disabled ACME provisioner %s: it takes no new accounts, orders, challenge responses or finalizations.\n", p.Name)
				fmt.Fprintln(r.stdout, "Certificates it issued stay valid; ACME clients can still revoke them and read their renewal information.")
				fmt.Fprintf(r.stdout, "Enable it again with `certwright acme enable %s`, or delete it with `certwright acme delete %s`.\n", p.Name, p.Name)
				return nil
			}
			fmt.Fprintf(r.stdout, "Enabled ACME provisioner %s: its directory %s takes new accounts and orders again.\n", p.Name, p.DirectoryURL)
			return nil
		},
	}
	if action == "disable" {
		cmd.summary = "stop an ACME provisioner taking new accounts, orders and finalizations (revocation goes on)"
		cmd.more = "ACME clients get an `unauthorized` problem saying the provisioner is disabled. Existing certificates stay\n" +
			"valid, and revocation and renewal information keep working for them. Challenge responses and finalization\n" +
			"stop at once on every replica; other replicas may take new accounts and orders for up to 10 seconds more."
	} else {
		cmd.summary = "let a disabled ACME provisioner take new accounts and orders again"
	}
	return cmd
}

func acmeDeleteCommand() *command {
	return &command{
		name: "delete", summary: "delete a disabled ACME provisioner (its accounts are deactivated; its certificates stay on record)",
		args:    "NAME [--json]",
		example: "certwright acme delete internal",
		more: "Only a disabled provisioner can be deleted: disable it first. Deleting deactivates its accounts, makes its\n" +
			"pending and ready orders invalid and revokes its external account binding keys; the certificates it issued\n" +
			"stay valid and on record (revoke them with `certwright cert revoke` if needed). A provisioner created later\n" +
			"under the same name starts with no accounts: old accounts never bind to it.",
		run: func(ctx context.Context, r *runner, args []string) error {
			fs, cf := newClientFlagSet("acme delete")
			c, pos, err := r.open(fs, cf, args, "NAME")
			if err != nil {
				return err
			}
			defer c.close()
			res, err := c.DeleteProvisioner(ctx, pos[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, res)
			}
			fmt.Fprintf(r.stdout, "Deleted ACME provisioner %s (%s): %d account(s) deactivated, %d open order(s) ended, %d external account key(s) revoked.\n",
				res.Name, res.ID, res.AccountsDeactivated, res.OrdersEnded, res.EABKeysRevoked)
			fmt.Fprintln(r.stdout, "The certificates it issued stay valid and on record; revoke them with `certwright cert revoke` if they must stop working.")
			return nil
		},
	}
}

func acmeEABRevokeCommand() *command {
	return &command{
		name: "revoke", summary: "revoke an external account binding key and deactivate the account it bound",
		args:    "KEYID [--json]",
		example: "certwright acme eab revoke eab_3q2-7wZxYk1mN0pR",
		more: "An unused key can no longer register an account. A key that bound an account deactivates that account\n" +
			"(RFC 8555 §7.3.6): it gets no more certificates and cannot be re-enabled; its client must register anew\n" +
			"with a new key. Certificates it already has stay valid: revoke them with `certwright cert revoke`.",
		run: func(ctx context.Context, r *runner, args []string) error {
			fs, cf := newClientFlagSet("acme eab revoke")
			c, pos, err := r.open(fs, cf, args, "KEYID")
			if err != nil {
				return err
			}
			defer c.close()
			k, err := c.RevokeEABKey(ctx, pos[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, k)
			}
			fmt.Fprintf(r.stdout, "Revoked external account binding key %s.\n", k.ID)
			switch {
			case k.AccountDeactivated:
				fmt.Fprintf(r.stdout, "The account it bound, %s, is deactivated: it gets no more certificates. Certificates it already has stay valid; revoke them with `certwright cert revoke` if the key leaked.\n", k.AccountID)
			case k.AccountID != "":
				fmt.Fprintf(r.stdout, "The account it bound, %s, was already deactivated.\n", k.AccountID)
			default:
				fmt.Fprintln(r.stdout, "It had bound no account; it can no longer bind one.")
			}
			return nil
		},
	}
}

// noACMEFlag is init's --acme, inverted: true when --acme=false was given,
// so the zero value keeps the quick start's provisioner "default".
type noACMEFlag bool

func (f *noACMEFlag) String() string { return strconv.FormatBool(!bool(*f)) }

func (f *noACMEFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", s)
	}
	*f = noACMEFlag(!v)
	return nil
}

func (f *noACMEFlag) IsBoolFlag() bool { return true }
