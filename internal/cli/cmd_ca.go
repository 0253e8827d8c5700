package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

func caCommands() []*command {
	return []*command{
		{
			name: "list", summary: "list certificate authorities", args: "[--json]",
			example: "certwright ca list",
			run:     runCAList,
		},
		{
			name: "show", summary: "show one CA", args: "NAME [--pem] [--json]",
			example: "certwright ca show issuing-2025 --pem",
			run:     runCAShow,
		},
		{
			name: "create-root", summary: "create a self-signed root CA",
			args:    "--name NAME --cn CN [--org O] [--country C] [--key ALG] [--days N] [--path-len N]",
			example: "certwright ca create-root --name root-2025 --cn \"Example Root CA 2025\" --org Example",
			run:     runCACreateRoot,
		},
		{
			name: "create-intermediate", summary: "create an intermediate CA signed by a CA of this server",
			args:    "--name NAME --parent CA --cn CN [--key ALG] [--days N] [--path-len N] [--permit-dns D,...] [--exclude-dns D,...] [--permit-ip CIDR,...] [--exclude-ip CIDR,...] [--permit-email E,...] [--permit-uri U,...]",
			example: "certwright ca create-intermediate --name internal --parent root-2025 --cn \"Example Internal CA\" --permit-dns example.internal",
			run:     runCACreateIntermediate,
		},
		{
			name: "create-external", summary: "create an intermediate CA whose certificate another CA signs; prints its CSR",
			args:    "--name NAME --cn CN [--org O] [--country C] [--key ALG] [--out FILE]",
			example: "certwright ca create-external --name corp-issuing --cn \"Corp Issuing CA\" --out corp-issuing.csr",
			run:     runCACreateExternal,
		},
		{
			name: "csr", summary: "print the CSR of a pending external CA", args: "NAME [--out FILE]",
			example: "certwright ca csr corp-issuing --out corp-issuing.csr",
			run:     runCACSR,
		},
		{
			name: "import", summary: "complete a pending external CA with its signed certificate",
			args:    "NAME --cert FILE [--chain FILE]",
			example: "certwright ca import corp-issuing --cert corp-issuing.pem --chain corp-root.pem",
			run:     runCAImport,
		},
		{
			name: "import-root", summary: "record an offline root (made by certwright ceremony root) from its certificate; its key stays offline",
			args:    "--cert FILE --name NAME [--json]",
			example: "certwright ca import-root --cert root.pem --name offline-root",
			more:    "The server never signs with an offline root. It prints the CRL URL to give certwright ceremony sign-intermediate (--crl-url),\nwhere the CRLs uploaded with ca import-crl are served.",
			run:     runCAImportRoot,
		},
		{
			name: "import-crl", summary: "upload the CRL an offline root signed at its ceremony",
			args:    "--ca NAME --crl FILE [--json]",
			example: "certwright ca import-crl --ca offline-root --crl root-1.crl",
			more:    "FILE is DER or PEM. The CRL must verify under the root's certificate and carry a CRL number above the last one uploaded;\nsubordinate CAs it lists are revoked and disabled here.",
			run:     runCAImportCRL,
		},
		{
			name: "chain", summary: "print a CA's certificate and its parents up to the root, as PEM",
			args:    "NAME [--out FILE]",
			example: "certwright ca chain internal --out internal-chain.pem",
			run:     runCAChain,
		},
		caStateCommand("disable", "stop a CA from issuing", (*client).DisableCA),
		caStateCommand("enable", "let a disabled CA issue again", (*client).EnableCA),
		caStateCommand("delete", "soft-delete a CA (restorable for a while)", (*client).DeleteCA),
		caStateCommand("restore", "restore a soft-deleted CA", (*client).RestoreCA),
		{
			name: "revoke", summary: "revoke a subordinate CA's certificate (listed on its parent's CRL and OCSP) and disable the CA",
			args:    "NAME [--reason REASON] [--invalidity-date TIME] [--json]",
			example: "certwright ca revoke team --reason ca_compromise",
			more:    "REASON defaults to ca_compromise. Revocation is permanent; certificates the CA issued stop validating wherever relying parties check revocation.",
			run:     runCARevoke,
		},
	}
}

// connect finds the server and returns a client for it.
func (r *runner) connect(cf *clientFlags) (*client, error) {
	ep, err := r.discover(cf)
	if err != nil {
		return nil, err
	}
	return newClient(ep), nil
}

func runCAList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca list")
	c, _, err := r.open(fs, cf, args)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ListCAs(ctx)
	if err != nil {
		return err
	}
	cas := res.CAs
	if cf.json {
		return printList(r.stdout, "cas", cas)
	}
	if len(cas) == 0 {
		fmt.Fprintln(r.stderr, "No CAs.")
		return nil
	}
	t := newTable(r.stdout, "NAME", "KIND", "STATUS", "PARENT", "KEY", "NOT AFTER", "ISSUED")
	for _, a := range cas {
		t.row(a.Name, caKind(a), a.Status, a.Parent, a.KeyAlgorithm, tableTimePtr(a.NotAfter), strconv.Itoa(a.CertificatesIssued))
	}
	return t.flush()
}

func caKind(a apitypes.CA) string {
	if a.Offline {
		return a.Kind + " (offline)"
	}
	if a.External {
		return a.Kind + " (external)"
	}
	return a.Kind
}

func pathLen(p *int) string {
	switch {
	case p == nil:
		return ""
	case *p < 0:
		return "unlimited"
	}
	return strconv.Itoa(*p)
}

func printCA(r *runner, a apitypes.CA, withPEM bool) error {
	f := newFields(r.stdout)
	f.add("Name", a.Name)
	f.add("ID", a.ID)
	f.add("Kind", caKind(a))
	f.add("Status", a.Status)
	f.add("Parent", a.Parent)
	f.add("Subject", a.Subject)
	f.add("Key algorithm", a.KeyAlgorithm)
	f.add("Key provider", a.KeyProvider)
	f.add("Not before", showTimePtr(a.NotBefore))
	f.add("Not after", showTimePtr(a.NotAfter))
	f.add("Path length", pathLen(a.PathLen))
	f.add("SHA-256 fingerprint", a.Fingerprint)
	f.add("Certificates issued", strconv.Itoa(a.CertificatesIssued))
	f.add("CRL URL", a.CRLURL)
	f.add("Certificate URL", a.CertificateURL)
	f.add("Created", showTime(a.CreatedAt))
	f.add("Deleted", showTimePtr(a.DeletedAt))
	f.add("Restorable until", showTimePtr(a.RestorableUntil))
	if err := f.flush(); err != nil {
		return err
	}
	if withPEM && a.CertificatePEM != "" {
		fmt.Fprint(r.stdout, ensureNewline(a.CertificatePEM))
	}
	return nil
}

func runCAShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca show")
	withPEM := fs.Bool("pem", false, "also print the CA certificate as PEM")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	a, err := c.GetCA(ctx, pos[0])
	if err != nil {
		return c.explainNotFound(ctx, err, nameRef{"CA", pos[0]})
	}
	if cf.json {
		return printJSON(r.stdout, a)
	}
	return printCA(r, a, *withPEM)
}

// caSpecFlags are the flags every CA creation shares.
type caSpecFlags struct {
	name, cn, org, country string
	key                    keyAlgFlag
	keyProvider            string
	days, pathLen          int
}

func (s *caSpecFlags) register(fs *flag.FlagSet, defKey string, defDays, defPathLen int, withValidity bool) {
	fs.StringVar(&s.name, "name", "", "CA `NAME`, unique on this server")
	fs.StringVar(&s.cn, "cn", "", "subject common name `CN`")
	fs.StringVar(&s.org, "org", "", "subject organization `O`")
	fs.StringVar(&s.country, "country", "", "subject country `C` (two letters)")
	fs.Var(&s.key, "key", "key `ALG`: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519 (server default "+defKey+")")
	fs.StringVar(&s.keyProvider, "key-provider", "", "where the key is made and kept: `software` (wrapped under the server's KEK file) or pkcs11 (in the server's PKCS#11 token, never extractable; ECDSA or RSA) (server default: its keys.ca_key_provider)")
	if withValidity {
		fs.IntVar(&s.days, "days", 0, "validity of `N` days (server default "+strconv.Itoa(defDays)+")")
		fs.IntVar(&s.pathLen, "path-len", 0, "at most `N` CAs below this one, -1 for unlimited (server default "+strconv.Itoa(defPathLen)+")")
	}
}

func (s *caSpecFlags) request(fs *flag.FlagSet, kind string) apitypes.CreateCARequest {
	req := apitypes.CreateCARequest{
		Name: s.name, Type: kind, CommonName: s.cn, Organization: s.org, Country: s.country,
		KeyAlgorithm: string(s.key), KeyProvider: s.keyProvider, ValidityDays: s.days,
	}
	if isSet(fs, "path-len") {
		pl := s.pathLen
		req.PathLen = &pl
	}
	return req
}

func (r *runner) checkSpec(fs *flag.FlagSet, s *caSpecFlags) error {
	if err := r.checkKeyProvider(s); err != nil {
		return err
	}
	if s.days < 0 {
		return r.usagef("--days must be positive")
	}
	if s.pathLen < -1 {
		return r.usagef("--path-len must be -1 (unlimited) or more")
	}
	return r.required(fs, "name", "cn")
}

func (r *runner) checkKeyProvider(s *caSpecFlags) error {
	switch s.keyProvider {
	case "", "software", "pkcs11":
		return nil
	}
	return r.usagef("--key-provider %q: want software or pkcs11", s.keyProvider)
}

func (r *runner) createCA(ctx context.Context, cf *clientFlags, req apitypes.CreateCARequest) (apitypes.CA, error) {
	c, err := r.connect(cf)
	if err != nil {
		return apitypes.CA{}, err
	}
	defer c.close()
	return c.CreateCA(ctx, req)
}

func runCACreateRoot(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca create-root")
	var s caSpecFlags
	s.register(fs, "ecdsa-p384", 3650, 1, true)
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.checkSpec(fs, &s); err != nil {
		return err
	}
	a, err := r.createCA(ctx, cf, s.request(fs, "root"))
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, a)
	}
	fmt.Fprintf(r.stdout, "Created root CA %s.\n", a.Name)
	return printCA(r, a, false)
}

func runCACreateIntermediate(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca create-intermediate")
	var s caSpecFlags
	s.register(fs, "ecdsa-p256", 1825, 0, true)
	parent := fs.String("parent", "", "parent `CA` (name or ID) that signs this one")
	var nc struct{ permitDNS, excludeDNS, permitIP, excludeIP, permitEmail, permitURI listFlag }
	// Any --permit-* closes the name types not permitted (all IPs, DNS
	// names, emails or URIs excluded), as for CA/B Forum technically
	// constrained CAs.
	fs.Var(&nc.permitDNS, "permit-dns", "permitted DNS `SUFFIXES`, comma-separated; with any --permit-*, name types not permitted are excluded (--permit-ip 0.0.0.0/0,::/0 keeps IPs open)")
	fs.Var(&nc.excludeDNS, "exclude-dns", "excluded DNS `SUFFIXES`, comma-separated")
	fs.Var(&nc.permitIP, "permit-ip", "permitted IP ranges, comma-separated `CIDRS`")
	fs.Var(&nc.excludeIP, "exclude-ip", "excluded IP ranges, comma-separated `CIDRS`")
	fs.Var(&nc.permitEmail, "permit-email", "permitted email `DOMAINS` or addresses, comma-separated")
	fs.Var(&nc.permitURI, "permit-uri", "permitted URI `DOMAINS`, comma-separated")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.checkSpec(fs, &s); err != nil {
		return err
	}
	if err := r.required(fs, "parent"); err != nil {
		return err
	}
	req := s.request(fs, "intermediate")
	req.Parent = *parent
	req.Constraints = apitypes.NameConstraints{
		PermittedDNS: nc.permitDNS, ExcludedDNS: nc.excludeDNS,
		PermittedIP: nc.permitIP, ExcludedIP: nc.excludeIP,
		PermittedEmail: nc.permitEmail, PermittedURI: nc.permitURI,
	}
	a, err := r.createCA(ctx, cf, req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, a)
	}
	fmt.Fprintf(r.stdout, "Created intermediate CA %s under %s.\n", a.Name, firstNonEmpty(a.Parent, *parent))
	return printCA(r, a, false)
}

func runCACreateExternal(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca create-external")
	var s caSpecFlags
	s.register(fs, "ecdsa-p256", 0, 0, false)
	out := fs.String("out", "", "write the CSR to `FILE` instead of standard output")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.checkKeyProvider(&s); err != nil {
		return err
	}
	if err := r.required(fs, "name", "cn"); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	a, err := c.CreateCA(ctx, s.request(fs, "external"))
	if err != nil {
		return err
	}
	csr := []byte(a.CSRPEM)
	if len(csr) == 0 {
		if csr, err = c.CACSR(ctx, a.Name); err != nil {
			return fmt.Errorf("CA %s was created, but fetching its CSR failed: %w", a.Name, err)
		}
	}
	if cf.json {
		if *out != "" && *out != "-" {
			if err := atomicfile.WriteFile(*out, csr, 0o644); err != nil {
				return err
			}
		}
		return printJSON(r.stdout, a)
	}
	if err := r.writeOutput(*out, csr, 0o644); err != nil {
		return err
	}
	if *out != "" && *out != "-" {
		fmt.Fprintf(r.stderr, "Created external CA %s (pending); its CSR is in %s.\nHave it signed, then run: certwright ca import %s --cert FILE\n", a.Name, *out, a.Name)
	}
	return nil
}

// runPEMCommand is "ca csr" and "ca chain": fetch PEM, write it out.
func runPEMCommand(ctx context.Context, r *runner, args []string, what string, fetch func(*client, context.Context, string) ([]byte, error)) error {
	fs, cf := newClientFlagSet("ca " + what)
	out := fs.String("out", "", "write the PEM to `FILE` instead of standard output")
	c, pos, err := r.open(fs, cf, args, "NAME")
	if err != nil {
		return err
	}
	defer c.close()
	data, err := fetch(c, ctx, pos[0])
	if err != nil {
		return err
	}
	if cf.json {
		if *out != "" && *out != "-" {
			if err := atomicfile.WriteFile(*out, data, 0o644); err != nil {
				return err
			}
		}
		return printJSON(r.stdout, map[string]string{"ca": pos[0], what + "_pem": string(data)})
	}
	return r.writeOutput(*out, data, 0o644)
}

func runCACSR(ctx context.Context, r *runner, args []string) error {
	return runPEMCommand(ctx, r, args, "csr", (*client).CACSR)
}

func runCAChain(ctx context.Context, r *runner, args []string) error {
	return runPEMCommand(ctx, r, args, "chain", (*client).CAChain)
}

func runCAImport(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca import")
	certFile := fs.String("cert", "", "PEM `FILE` with the CA certificate signed by the external CA")
	chainFile := fs.String("chain", "", "PEM `FILE` with the certificates above it")
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := r.required(fs, "cert"); err != nil {
		return err
	}
	var req apitypes.ImportCARequest
	certPEM, err := r.readCertFile(*certFile)
	if err != nil {
		return err
	}
	req.CertificatePEM = string(certPEM)
	if *chainFile != "" {
		chainPEM, err := r.readCertFile(*chainFile)
		if err != nil {
			return err
		}
		req.ChainPEM = string(chainPEM)
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	a, err := c.ImportCA(ctx, pos[0], req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, a)
	}
	fmt.Fprintf(r.stdout, "Imported the certificate of CA %s; it is %s.\n", a.Name, a.Status)
	return printCA(r, a, false)
}

func runCAImportRoot(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca import-root")
	certFile := fs.String("cert", "", "PEM or DER `FILE` with the offline root's certificate (DIR/root.pem of the ceremony)")
	name := fs.String("name", "", "CA `NAME` for the root on this server")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "cert", "name"); err != nil {
		return err
	}
	certPEM, err := r.readCertFile(*certFile)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	a, err := c.ImportRoot(ctx, apitypes.ImportRootRequest{Name: *name, CertificatePEM: string(certPEM)})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, a)
	}
	fmt.Fprintf(r.stdout, "Imported the offline root %s; its key is not on this server.\n", a.Name)
	if err := printCA(r, a, false); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "\nAt the ceremony, sign subordinate CAs with:\n  --crl-url %s --ca-issuers-url %s\nthen upload the root's first CRL: certwright ca import-crl --ca %s --crl FILE\n", a.CRLURL, a.CertificateURL, a.Name)
	return nil
}

// maxCRLFile bounds a CRL file read for upload.
const maxCRLFile = 1 << 20

func runCAImportCRL(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca import-crl")
	caName := fs.String("ca", "", "the offline root `CA` (name or ID)")
	crlFile := fs.String("crl", "", "the CRL `FILE` (DER or PEM) from certwright ceremony crl")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "ca", "crl"); err != nil {
		return err
	}
	data, err := r.readInput(*crlFile, maxCRLFile)
	if err != nil {
		return fmt.Errorf("read CRL: %w", err)
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return fmt.Errorf("read CRL %s: the PEM block is %q, want X509 CRL", *crlFile, b.Type)
		}
		der = b.Bytes
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		return fmt.Errorf("read CRL %s: %w", *crlFile, err)
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.ImportCRL(ctx, *caName, apitypes.ImportCRLRequest{CRLPEM: string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))})
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	fmt.Fprintf(r.stdout, "Uploaded CRL number %d of %s (%d entries), served at %s until a newer one is uploaded.\n", res.Number, res.CA, res.Entries, res.CRLURL)
	f := newFields(r.stdout)
	f.add("This update", showTime(res.ThisUpdate))
	f.add("Next update", showTime(res.NextUpdate))
	f.add("Revoked and disabled", strings.Join(res.RevokedCAs, ", "))
	return f.flush()
}

// readCertFile reads certificates and returns them as PEM, so that a DER
// file works too and a wrong file fails before anything is sent.
func (r *runner) readCertFile(path string) ([]byte, error) {
	data, err := r.readInput(path, pki.MaxPEMInput)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	var ders [][]byte
	for _, c := range certs {
		ders = append(ders, c.Raw)
	}
	return pki.CertPEM(ders...), nil
}

func caStateCommand(action, summary string, call func(*client, context.Context, string) (apitypes.CA, error)) *command {
	past := map[string]string{"disable": "disabled", "enable": "enabled", "delete": "deleted", "restore": "restored"}[action]
	return &command{
		name: action, summary: summary, args: "NAME [--json]",
		example: "certwright ca " + action + " internal",
		run: func(ctx context.Context, r *runner, args []string) error {
			fs, cf := newClientFlagSet("ca " + action)
			c, pos, err := r.open(fs, cf, args, "NAME")
			if err != nil {
				return err
			}
			defer c.close()
			a, err := call(c, ctx, pos[0])
			if err != nil {
				return err
			}
			if cf.json {
				return printJSON(r.stdout, a)
			}
			fmt.Fprintf(r.stdout, "CA %s %s (status: %s).\n", a.Name, past, a.Status)
			if action == "delete" && a.RestorableUntil != nil {
				fmt.Fprintf(r.stdout, "It can be restored until %s with: certwright ca restore %s\n", showTime(*a.RestorableUntil), a.Name)
			}
			return nil
		},
	}
}

func runCARevoke(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("ca revoke")
	var f revokeFlags
	f.register(fs, "why: `REASON` (default ca_compromise)")
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	body, err := r.revokeBody(&f, false)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	rev, err := c.RevokeCA(ctx, pos[0], body)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, rev)
	}
	r.printRevocation(rev, "CA "+pos[0]+" certificate")
	if !rev.AlreadyRevoked {
		fmt.Fprintf(r.stdout, "CA %s is disabled.\n", pos[0])
	}
	return nil
}
