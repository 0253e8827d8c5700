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

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/verify"
)

// runVerify checks a certificate offline: it needs no server, only files.
func runVerify(_ context.Context, r *runner, args []string) error {
	fset := flag.NewFlagSet("verify", flag.ContinueOnError)
	chainFile := fset.String("chain", "", "PEM `FILE` with intermediates to build the chain from")
	rootsFile := fset.String("roots", "", "PEM `FILE` with the roots to trust (default DIR/root.pem if it exists, else the system roots)")
	purpose := fset.String("purpose", "", "check the certificate may be used for `PURPOSE`: server, client or code")
	host := fset.String("host", "", "check the certificate names this DNS `NAME` or IP address")
	dataDir := fset.String("data-dir", "", "data `DIR` whose root.pem is trusted by default ($CERTWRIGHT_DATA_DIR, default ./certwright-data)")
	asJSON := fset.Bool("json", false, "print the report as JSON")
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
	rootsFrom := "system roots"
	switch {
	case *rootsFile != "":
		if opts.Roots, err = r.readCerts(*rootsFile); err != nil {
			return err
		}
		rootsFrom = *rootsFile
	default:
		dir := firstNonEmpty(*dataDir, r.getenv("CERTWRIGHT_DATA_DIR"), defaultDataDir)
		path := filepath.Join(dir, rootFile)
		if _, err := os.Stat(path); err == nil {
			if opts.Roots, err = r.readCerts(path); err != nil {
				return err
			}
			rootsFrom = path
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read roots: %w", err)
		}
	}

	rep := verify.Verify(certs[0], opts)
	if *asJSON {
		if err := printJSON(r.stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(r.stdout, "roots:     %s\n%s", rootsFrom, rep.Text())
	}
	if rep.Valid {
		return nil
	}
	msg := "not valid"
	if len(rep.Problems) > 0 {
		msg = rep.Problems[0].Message
		if n := len(rep.Problems) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more problem(s))", n)
		}
	}
	return fmt.Errorf("verify %s: %s", pos[0], msg)
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
