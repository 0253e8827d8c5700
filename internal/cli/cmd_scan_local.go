package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/scan"
)

// scanLocalCommand is "certwright scan TARGET...": a scan from this
// machine, with no server, of whatever targets the user names.
func scanLocalCommand() *command {
	return &command{
		name: "scan", summary: "scan endpoints from this machine, no server needed: what each speaks, whether it is encrypted, its TLS grade and why",
		args:    "TARGET... [--json] [--roots FILE] [--ports LIST] [--no-revocation] [--fetch-anywhere]",
		example: "certwright scan 127.0.0.1:5432 127.0.0.1:6379 127.0.0.1:8443",
		more: "A target is host:port, a hostname (port 443, or --ports), host:443,8443, or a CIDR range with ports\n" +
			"(10.0.0.0/28:443). Each endpoint is identified (implicit TLS, STARTTLS for SMTP, IMAP, POP3, FTP, LDAP, XMPP,\n" +
			"PostgreSQL and MySQL, or plaintext: HTTP, Redis, AMQP, MQTT, NATS...), its TLS versions and cipher suites are\n" +
			"enumerated (a line per version sums up its suites and names the weak ones; --json lists every suite), its\n" +
			"certificate chain checked (and its revocation, through the certificate's own CRL and OCSP URLs, fetched only\n" +
			"from public addresses and the targets' own addresses and names unless --fetch-anywhere: the URLs are the\n" +
			"certificate issuer's choice, not yours), and it is graded as SSL Labs grades (A+ to F, T untrusted, M name\n" +
			"mismatch) with the rules that capped the grade. The roots of DIR/root.pem (this instance's CAs) are trusted\n" +
			"beside the system roots when that file exists. Only scan what you are allowed to: a TLS endpoint takes 40 to\n" +
			"100 connections.",
		run: runScanLocal,
	}
}

func runScanLocal(ctx context.Context, r *runner, args []string) error {
	fset := flag.NewFlagSet("scan", flag.ContinueOnError)
	asJSON := fset.Bool("json", false, "print the observations as JSON")
	rootsFile := fset.String("roots", "", "PEM `FILE` of roots to trust beside the system roots (default DIR/root.pem if it exists)")
	dataDir := fset.String("data-dir", "", "data `DIR` whose root.pem is trusted by default ($CERTWRIGHT_DATA_DIR, default ./certwright-data)")
	ports := fset.String("ports", "", "comma-separated `PORTS` for targets given without one (default 443)")
	timeout := fset.Duration("timeout", 5*time.Second, "bound on each connection's exchange (`DURATION`)")
	rate := fset.Int("rate", 10, "connections started per second to one host (`N`, 1 to 1000)")
	noRev := fset.Bool("no-revocation", false, "do not fetch CRLs and OCSP answers (a revoked certificate is then not found)")
	anywhere := fset.Bool("fetch-anywhere", false, "fetch CRLs and OCSP answers from any address a certificate names, not only public addresses and the targets' own")
	pos, err := r.parse(fset, args, slices.Repeat([]string{"[TARGET]"}, maxScanArgs)...)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return r.usagef("name at least one target, like 127.0.0.1:5432, example.com or 10.0.0.0/28:443")
	}
	if *rate < 1 || *rate > 1000 {
		return r.usagef("--rate %d: want 1 to 1000 connections per second", *rate)
	}
	if *timeout <= 0 || *timeout > 2*time.Minute {
		return r.usagef("--timeout %s: want more than 0 and at most 2m", *timeout)
	}
	opts := scan.StandaloneOptions{IOTimeout: *timeout, PerHost: *rate, SkipRevocation: *noRev, FetchAnywhere: *anywhere}
	if *ports != "" {
		for _, p := range strings.Split(*ports, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				return r.usagef("--ports %q: want port numbers 1 to 65535, separated by commas", *ports)
			}
			opts.Ports = append(opts.Ports, uint16(n))
		}
	}
	var rootsFrom string
	if opts.Roots, rootsFrom, err = r.chosenRoots(*rootsFile, *dataDir); err != nil {
		return err
	}
	if rootsFrom != "" && !*asJSON {
		fmt.Fprintf(r.stderr, "Trusting the roots in %s beside the system roots.\n", rootsFrom)
	}
	obs, err := scan.Standalone(ctx, pos, opts)
	if err != nil && len(obs) == 0 {
		if errors.Is(err, scan.ErrNoTargets) {
			return r.usagef("%v", err)
		}
		return &hintError{err: err, hint: "a target is host:port, a hostname, host:443,8443 or a CIDR range with ports (10.0.0.0/28:443)"}
	}
	if *asJSON {
		if werr := scan.WriteJSON(r.stdout, obs); werr != nil {
			return werr
		}
	} else if werr := scan.WriteTable(r.stdout, obs); werr != nil {
		return werr
	}
	return err
}

// chosenRoots are the roots a command was told to trust (verify, scan):
// --roots, else DIR/root.pem when it exists, else none; and where they
// were read from.
func (r *runner) chosenRoots(rootsFile, dataDir string) ([]*x509.Certificate, string, error) {
	if rootsFile != "" {
		certs, err := r.readCerts(rootsFile)
		return certs, rootsFile, err
	}
	path := filepath.Join(firstNonEmpty(dataDir, r.getenv("CERTWRIGHT_DATA_DIR"), defaultDataDir), rootFile)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("read roots: %w", err)
	}
	certs, err := r.readCerts(path)
	return certs, path, err
}
