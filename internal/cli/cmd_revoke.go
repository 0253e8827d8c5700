package cli

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func revokeCommands() []*command {
	reasons := strings.Join(pki.ReasonNames(), ", ")
	return []*command{
		{
			name: "revoke", summary: "revoke one certificate (permanent)",
			args:    "SERIAL --reason REASON [--invalidity-date TIME] [--json]",
			example: "certwright cert revoke 01a2b3c4d5e6f708090a0b0c0d0e0f1011 --reason key_compromise",
			more:    "REASON is one of " + reasons + ".",
			run:     runCertRevoke,
		},
		{
			name: "revoke-bulk", summary: "revoke every unexpired certificate matching a selector, in one transaction",
			args:    "--reason REASON (--ca CA | --profile P | --san NAME | --spki-sha256 HEX | --key-of FILE)... (--dry-run | --yes) [--invalidity-date TIME] [--json]",
			example: "certwright cert revoke-bulk --profile web_server --san app.example.internal --reason key_compromise --dry-run",
			more: "Every selector given must match. Without --yes nothing is revoked: the command lists what would be and exits non-zero.\n" +
				"--key-of reads a certificate, CSR, public key or private key (PEM) and selects every certificate for that key; a private key never leaves this machine.\n" +
				"REASON is one of " + reasons + ".",
			run: runCertRevokeBulk,
		},
	}
}

// revokeFlags are shared by the revoke commands.
type revokeFlags struct {
	reason     string
	invalidity string
}

func (f *revokeFlags) register(fs *flag.FlagSet, reasonHelp string) {
	fs.StringVar(&f.reason, "reason", "", reasonHelp)
	fs.StringVar(&f.invalidity, "invalidity-date", "", "when the key was known or suspected to be compromised: `TIME` as RFC 3339 (2026-11-20T08:00:00Z) or a date (2026-11-20, UTC midnight); not in the future")
}

func (r *runner) revokeBody(f *revokeFlags, required bool) (apitypes.RevokeRequest, error) {
	var out apitypes.RevokeRequest
	if f.reason == "" && required {
		return out, r.usagef("--reason is required (one of %s)", strings.Join(pki.ReasonNames(), ", "))
	}
	if f.reason != "" {
		rs, err := pki.ParseReason(f.reason)
		if err != nil {
			return out, r.usagef("--reason: %s", strings.TrimPrefix(err.Error(), "pki: "))
		}
		out.Reason = rs.String()
	}
	if f.invalidity != "" {
		t, err := parseTimeArg(f.invalidity)
		if err != nil {
			return out, r.usagef("--invalidity-date: %v", err)
		}
		out.InvalidityDate = &t
	}
	return out, nil
}

// parseTimeArg reads RFC 3339 or a bare date (UTC midnight).
func parseTimeArg(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-11-20T08:00:00Z) or a date (2026-11-20)", s)
}

func runCertRevoke(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert revoke")
	var f revokeFlags
	f.register(fs, "why: `REASON` (key_compromise, superseded, cessation_of_operation, ...)")
	pos, err := r.parse(fs, args, "SERIAL")
	if err != nil {
		return err
	}
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	body, err := r.revokeBody(&f, true)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	rev, err := c.RevokeCertificate(ctx, serial, body)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, rev)
	}
	r.printRevocation(rev, "Certificate")
	return nil
}

func (r *runner) printRevocation(rev apitypes.Revocation, what string) {
	if rev.AlreadyRevoked {
		fmt.Fprintf(r.stdout, "%s %s was already revoked at %s by %s, reason %s; nothing changed.\n",
			what, rev.Serial, showTime(rev.RevokedAt), rev.RevokedBy, rev.Reason)
		return
	}
	fmt.Fprintf(r.stdout, "%s %s revoked at %s, reason %s.\n", what, rev.Serial, showTime(rev.RevokedAt), rev.Reason)
	if rev.InvalidityDate != nil {
		fmt.Fprintf(r.stdout, "Invalidity date: %s\n", showTime(*rev.InvalidityDate))
	}
	fmt.Fprintln(r.stdout, "OCSP answers revoked now; the CA's CRL is regenerated within seconds.")
}

func runCertRevokeBulk(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert revoke-bulk")
	var f revokeFlags
	f.register(fs, "why: `REASON` (key_compromise, superseded, cessation_of_operation, ...)")
	var sel apitypes.Selector
	fs.StringVar(&sel.CA, "ca", "", "certificates issued by `CA`")
	fs.StringVar(&sel.Profile, "profile", "", "certificates issued under `PROFILE`")
	fs.StringVar(&sel.SAN, "san", "", "certificates with the subject alternative `NAME` (exact, case-insensitive)")
	fs.StringVar(&sel.SPKISHA256, "spki-sha256", "", "certificates for the public key whose SubjectPublicKeyInfo has SHA-256 `HEX`")
	keyOf := fs.String("key-of", "", "certificates for the key in `FILE` (certificate, CSR, public or private key, PEM)")
	dryRun := fs.Bool("dry-run", false, "list what would be revoked; change nothing")
	yes := fs.Bool("yes", false, "revoke (without it, nothing is revoked)")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	body, err := r.revokeBody(&f, true)
	if err != nil {
		return err
	}
	if *keyOf != "" {
		if sel.SPKISHA256 != "" {
			return r.usagef("give --spki-sha256 or --key-of, not both")
		}
		data, err := r.readInput(*keyOf, pki.MaxPEMInput)
		if err != nil {
			return fmt.Errorf("read --key-of: %w", err)
		}
		h, err := spkiHash(data)
		if err != nil {
			return fmt.Errorf("--key-of %s: %w", *keyOf, err)
		}
		sel.SPKISHA256 = h
	}
	sel.SPKISHA256 = strings.ToLower(strings.ReplaceAll(sel.SPKISHA256, ":", ""))
	if sel == (apitypes.Selector{}) {
		return r.usagef("give at least one selector: --ca, --profile, --san, --spki-sha256 or --key-of")
	}
	if *dryRun && *yes {
		return r.usagef("give --dry-run or --yes, not both")
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	req := apitypes.BulkRevokeRequest{Selector: sel, Reason: body.Reason, InvalidityDate: body.InvalidityDate, DryRun: !*yes}
	res, err := c.RevokeBulk(ctx, req)
	if err != nil {
		return err
	}
	if cf.json {
		if err := printJSON(r.stdout, res); err != nil {
			return err
		}
	} else {
		verb := "Revoked"
		if res.DryRun {
			verb = "Would revoke"
		}
		fmt.Fprintf(r.stdout, "%s %d certificate(s), reason %s:\n", verb, res.Count, body.Reason)
		for _, s := range res.Serials {
			fmt.Fprintln(r.stdout, s)
		}
	}
	if res.DryRun && !*dryRun {
		return fmt.Errorf("nothing revoked: check the list above, then run the same command with --yes to revoke these %d certificate(s)", res.Count)
	}
	return nil
}

// spkiHash returns the hex SHA-256 of the SubjectPublicKeyInfo of the key in
// a PEM certificate, CSR, public key or private key.
func spkiHash(data []byte) (string, error) {
	var pub crypto.PublicKey
	for rest := data; pub == nil; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return "", err
			}
			pub = c.PublicKey
		case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
			c, err := x509.ParseCertificateRequest(b.Bytes)
			if err != nil {
				return "", err
			}
			pub = c.PublicKey
		case "PUBLIC KEY":
			p, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				return "", err
			}
			pub = p
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			var k any
			var err error
			switch b.Type {
			case "PRIVATE KEY":
				k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
			case "EC PRIVATE KEY":
				k, err = x509.ParseECPrivateKey(b.Bytes)
			default:
				k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			}
			if err != nil {
				return "", err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return "", errors.New("unsupported private key type")
			}
			pub = s.Public()
		}
	}
	if pub == nil {
		return "", errors.New("no certificate, CSR, public key or private key PEM block found")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
