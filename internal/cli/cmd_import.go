package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// importCommands are the cert import commands (cert import).
func importCommands() []*command {
	return []*command{
		{
			name: "import", summary: "add certificates issued elsewhere to the inventory, to monitor their expiry and compliance",
			args:    "FILE... [--tag T]... [--owner O] [--json]",
			example: "certwright cert import legacy-app.pem vendor-bundle.pem --tag legacy --owner team-web",
			more: "Each FILE is a PEM bundle of one or more certificates, or one DER certificate (- reads standard input).\n" +
				"In a bundle, a certificate that issued another one of the bundle is stored as that one's chain; every\n" +
				"other certificate (leaves, and CA certificates on their own) becomes an inventory record keyed by its\n" +
				"SHA-256 fingerprint. Certificates already in the inventory are skipped.\n\n" +
				"Keys stay where they are: a file holding a private key (any PEM \"... PRIVATE KEY\" block, or a DER key)\n" +
				"is refused here, before anything is sent, and the server refuses it again. Nothing is imported unless\n" +
				"every file is acceptable: no private key, no CSR or other non-certificate block, at most 1 MiB per file\n" +
				"and 1000 certificates in all. Add --tag public to hold a certificate to the publicly-trusted rules.",
			run: runCertImport,
		},
	}
}

func runCertImport(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert import")
	var tags listFlag
	fs.Var(&tags, "tag", "inventory `TAG` for every imported certificate (repeat, or comma-separated)")
	owner := fs.String("owner", "", "who answers for the certificates (`OWNER`, free text shown in alerts and reports)")
	// FILE..., any number: one required name, then optional ones.
	positional := make([]string, 1, len(args)+1)
	positional[0] = "FILE"
	for range args {
		positional = append(positional, "[FILE]")
	}
	names, err := r.parse(fs, args, positional...)
	if err != nil {
		return err
	}
	if len(names) > compliance.MaxImportFiles {
		return r.usagef("%d files: at most %d in one import", len(names), compliance.MaxImportFiles)
	}
	files := make([]compliance.ImportFile, 0, len(names))
	for _, n := range names {
		data, err := r.readInput(n, compliance.MaxImportFile)
		if err != nil {
			return fmt.Errorf("cert import: %w", err)
		}
		files = append(files, compliance.ImportFile{Name: n, Data: data})
	}
	// The same checks as the server, here: a private key is never sent.
	if err := compliance.ValidateImport(files); err != nil {
		return &hintError{fmt.Errorf("cert import: %w", err), "nothing was imported; fix or leave out that file and run the command again"}
	}
	req := apitypes.ImportRequest{Tags: tags, Owner: *owner}
	for _, f := range files {
		// Only the certificates travel, re-encoded: whatever else the file
		// held (comments, text dumps) stays here.
		certs, err := compliance.ParseBundle(f.Name, f.Data)
		if err != nil {
			return fmt.Errorf("cert import: %w", err)
		}
		ders := make([][]byte, len(certs))
		for i, c := range certs {
			ders[i] = c.Raw
		}
		req.Files = append(req.Files, apitypes.ImportFile{Name: f.Name, PEM: string(pki.CertPEM(ders...))})
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ImportCertificates(ctx, req)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusRequestEntityTooLarge {
		return &hintError{err, "nothing was imported: the files together exceed the server's request limit; import them in several runs"}
	}
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	return printImport(r.stdout, res)
}

// printImport lists what was imported and what was skipped.
func printImport(w io.Writer, res apitypes.ImportResult) error {
	fmt.Fprintf(w, "Imported %d %s, skipped %d.\n", len(res.Imported), plural(len(res.Imported), "certificate"), len(res.Skipped))
	if len(res.Imported) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "SERIAL (SHA-256)", "NAME", "ISSUER", "NOT AFTER", "KEY")
		for _, c := range res.Imported {
			t.row(c.Serial, certName(c), c.Issuer, tableTime(c.NotAfter), c.KeyAlgorithm+" "+strconv.Itoa(c.KeyBits))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "SKIPPED (SHA-256)", "SUBJECT", "REASON")
		for _, s := range res.Skipped {
			t.row(s.Fingerprint, s.Subject, s.Reason)
		}
		return t.flush()
	}
	return nil
}
