package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/inspect"
)

func inspectCommand() *command {
	return &command{
		name: "inspect", summary: "describe a certificate, chain, CSR or CRL file in plain words (no server needed)",
		args:    "FILE [--max-entries N] [--json]",
		example: "certwright inspect app.pem\ncat app.csr | certwright inspect -",
		more: "FILE is PEM or DER; - reads standard input. A file of several certificates is a chain,\n" +
			"leaf first: each certificate is checked against the next one's key. Other PEM blocks\n" +
			"(a private key in a bundle) are skipped and named, never printed.",
		run: runInspect,
	}
}

func runInspect(_ context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the description as a JSON object")
	maxEntries := fs.Int("max-entries", inspect.DefaultMaxEntries, "list at most `N` revoked entries of a CRL (the count is always shown)")
	pos, err := r.parse(fs, args, "FILE")
	if err != nil {
		return err
	}
	if *maxEntries < 1 {
		return r.usagef("--max-entries must be at least 1")
	}
	data, err := r.readInput(pos[0], inspect.MaxInput)
	if err != nil {
		return &hintError{fmt.Errorf("inspect: %w", err), "name a readable certificate, chain, CSR or CRL file (PEM or DER), or - for standard input"}
	}
	rep, err := inspect.Inspect(data, inspect.Options{Now: r.now(), MaxEntries: *maxEntries})
	if err != nil {
		return &hintError{fmt.Errorf("%s: %s", pos[0], strings.TrimPrefix(err.Error(), "inspect: ")), "inspect reads X.509 certificates, chains, CSRs and CRLs, PEM or DER"}
	}
	if *asJSON {
		return printJSON(r.stdout, rep)
	}
	_, err = fmt.Fprint(r.stdout, rep.Text())
	return err
}
