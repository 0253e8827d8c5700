package cli

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck"
	"github.com/certwright/certwright/internal/verify"
)

// runVerify checks a certificate offline: it needs no server, only files,
// and no network unless --check-revocation asks for it.
func runVerify(ctx context.Context, r *runner, args []string) error {
	return runVerifyWith(ctx, r, args, verifyRevChecker())
}

// verifyRevChecker is the revocation checker of verify: the default
// limits, and words for a missing issuer that name the command's flags.
func verifyRevChecker() *revcheck.Checker {
	return &revcheck.Checker{
		UserAgent:     "certwright/" + version,
		IssuerSources: "the certificate file, --chain and the roots (add it with --chain)",
	}
}

// verifyJSON is the --json output: the report, and the revocation check
// when --check-revocation is given.
type verifyJSON struct {
	verify.Report
	Revocation *revcheck.Report `json:"revocation,omitempty"`
}

// runVerifyWith is runVerify with the revocation checker given.
func runVerifyWith(ctx context.Context, r *runner, args []string, rc *revcheck.Checker) error {
	fset := flag.NewFlagSet("verify", flag.ContinueOnError)
	chainFile := fset.String("chain", "", "PEM `FILE` with intermediates to build the chain from")
	rootsFile := fset.String("roots", "", "PEM `FILE` with the roots to trust (default DIR/root.pem if it exists, else the system roots)")
	purpose := fset.String("purpose", "", "check the certificate may be used for `PURPOSE`: server, client or code")
	host := fset.String("host", "", "check the certificate names this DNS `NAME` or IP address")
	dataDir := fset.String("data-dir", "", "data `DIR` whose root.pem is trusted by default ($CERTWRIGHT_DATA_DIR, default ./certwright-data)")
	asJSON := fset.Bool("json", false, "print the report as JSON")
	checkRev := fset.Bool("check-revocation", false, "also ask the certificate's CRL distribution points and OCSP responders (and those of its intermediates) whether it is revoked; fails when revoked or when no source answers")
	pos, err := r.parse(fset, args, "CERT")
	if err != nil {
		return err
	}
	switch *purpose {
	case "", verify.PurposeServer, verify.PurposeClient, verify.PurposeCode:
	default:
		return r.usagef("--purpose %q: want server, client or code", *purpose)
	}

	certs, err := r.readCerts(pos[0])
	if err != nil {
		return err
	}
	opts := verify.Options{Intermediates: certs[1:], Purpose: *purpose, Host: *host}
	if *chainFile != "" {
		more, err := r.readCerts(*chainFile)
		if err != nil {
			return err
		}
		opts.Intermediates = append(opts.Intermediates, more...)
	}
	var rootsFrom string
	opts.Roots, rootsFrom, err = r.chosenRoots(*rootsFile, *dataDir)
	if err != nil {
		return err
	}
	if rootsFrom == "" {
		rootsFrom = "system roots"
	}

	rep := verify.Verify(certs[0], opts)
	var rev *revcheck.Report
	if *checkRev {
		rev = rc.Check(ctx, certs[0], opts)
		// Revocation comes first: it outweighs any other problem.
		rep.Problems = append(rev.Problems(), rep.Problems...)
		rep.Valid = len(rep.Problems) == 0
		for _, w := range rev.Warnings {
			fmt.Fprintf(r.stderr, "certwright: warning: %s\n", w)
		}
	}
	if *asJSON {
		if err := printJSON(r.stdout, verifyJSON{Report: rep, Revocation: rev}); err != nil {
			return err
		}
	} else {
		text := rep.Text()
		if rev != nil {
			// The revocation details go before the final valid/NOT valid line.
			body := strings.TrimSuffix(text, "\n")
			i := strings.LastIndexByte(body, '\n') + 1
			text = body[:i] + rev.Text() + text[i:]
		}
		fmt.Fprintf(r.stdout, "roots:     %s\n%s", rootsFrom, text)
	}
	if rep.Valid {
		return nil
	}
	msg := "not valid"
	if len(rep.Problems) > 0 {
		msg = rep.Problems[0].Message
		if rep.Problems[0].Code == verify.CodeRevoked {
			msg = "revoked: " + msg
		}
		if n := len(rep.Problems) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more problem(s))", n)
		}
	}
	err = fmt.Errorf("verify %s: %s", pos[0], msg)
	if rev != nil && rev.Status == revcheck.StatusUndetermined {
		return &hintError{err, "--check-revocation fails closed when no CRL or OCSP source answers; make one reachable, or verify without --check-revocation"}
	}
	return err
}

// readCerts reads one or more certificates (PEM or DER) from a file or "-".
func (r *runner) readCerts(path string) ([]*x509.Certificate, error) {
	data, err := r.readInput(path, pki.MaxPEMInput)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("read certificates from %s: %w", path, err)
	}
	return certs, nil
}
