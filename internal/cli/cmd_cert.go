package cli

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"github.com/certwright/certwright/internal/inventory"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/suggest"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// maxPasswordFile bounds a PKCS#12 password file.
const maxPasswordFile = 4 << 10

func certCommands() []*command {
	return []*command{
		{
			name: "sign", summary: "issue a certificate for a CSR",
			args:    "--csr FILE --profile PROFILE [--ca CA] [--days N] [--tag T,...] [--out FILE]",
			example: "certwright cert sign --csr app.csr --profile web_server --out app.pem",
			more: "When the profile requires approval, nothing is issued yet: the command prints the request ID and exits 3.\n" +
				"Once a second principal approves it, fetch the certificate with: certwright request fetch ID --out FILE\n\n" +
				strings.TrimSuffix(exitCodesHelp, "\n"),
			run: runCertSign,
		},
		{
			name: "issue", summary: "issue a certificate with a key the server generates (the key is shown once)",
			args:    "--profile PROFILE --cn CN [--dns N,...] [--ip A,...] [--email E,...] [--uri U,...] [--key ALG] [--days N] [--ca CA] [--tag T,...] [--out FILE] (--key-out FILE | --p12-out FILE --p12-password-file FILE)",
			example: "certwright cert issue --profile web_server --cn app.example.internal --dns app.example.internal --out app.pem --key-out app.key",
			run:     runCertIssue,
		},
		{
			name: "list", summary: "list issued certificates",
			args:    "[--ca CA] [--profile P] [--status valid|revoked|expired] [--san NAME] [--tag T] [--expiring-within 30d] [--sort expiry|serial] [--limit N | --all] [--after POSITION] [--json]",
			example: "certwright cert list --expiring-within 30d",
			more: "The list is sorted by expiry, soonest first, and shows one page of 50 unless --limit or --all;\n" +
				"the line under it says how to get the next page. STATUS says renewed when a renewal superseded\n" +
				"the certificate; imported certificates' serials (their SHA-256 fingerprints) are shortened.",
			run: runCertList,
		},
		{
			name: "show", summary: "show one certificate's inventory record", args: "SERIAL [--json]",
			example: "certwright cert show 01a2b3c4d5e6f708090a0b0c0d0e0f1011 --json",
			run:     runCertShow,
		},
		{
			name: "get", summary: "print a certificate as PEM, with its chain if asked",
			args:    "SERIAL [--chain] [--out FILE]",
			example: "certwright cert get 01a2b3c4d5e6f708090a0b0c0d0e0f1011 --chain --out app.pem",
			run:     runCertGet,
		},
		{
			name: "key", summary: "fetch a certificate's retained managed key (machine principals with key:export only)",
			args:    "SERIAL --out FILE",
			example: "certwright cert key 01a2b3c4d5e6f708090a0b0c0d0e0f1011 --out app.key --token-file agent.token",
			more:    "Only keys the profile retained (key_export: retain) can be fetched again, only by a machine\nprincipal whose key:export covers the certificate; every hand-out is audited.",
			run:     runCertKey,
		},
	}
}

func runCertKey(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert key")
	out := fs.String("out", "", "write the PKCS#8 PEM key to `FILE` (created with mode 0600; required)")
	pos, err := r.parse(fs, args, "SERIAL")
	if err != nil {
		return err
	}
	if *out == "" || *out == "-" {
		return r.usagef("--out FILE is required: a private key is never printed to the terminal")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite a key file", *out)
	}
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	data, err := c.getPEM(ctx, "/api/v1/certificates/"+seg(serial)+"/key", nil)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(*out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "key of %s written to %s (mode 0600)\n", serial, *out)
	return nil
}

// issueFlags are shared by sign and issue.
type issueFlags struct {
	profile, ca, out, owner string
	days                    int
	tags                    listFlag
	autoRenew               bool
}

func (f *issueFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.profile, "profile", "", "`PROFILE` to issue under (see certwright profile list)")
	fs.StringVar(&f.ca, "ca", "", "issuing `CA` (default: the server's default issuing CA)")
	fs.IntVar(&f.days, "days", 0, "validity of `N` days (default: the profile's maximum)")
	fs.Var(&f.tags, "tag", "inventory `TAGS`, comma-separated")
	fs.StringVar(&f.out, "out", "", "write the certificate and its chain (without the root) to `FILE` (mode 0644)")
	fs.StringVar(&f.owner, "owner", "", "who answers for the certificate (`TEXT`, shown in alerts)")
	fs.BoolVar(&f.autoRenew, "auto-renew", false, "let the server renew the certificate at its profile's threshold (sign: the profile must allow key reuse; issue: the server keeps the key, wrapped)")
}

func (r *runner) checkIssueFlags(fs *flag.FlagSet, f *issueFlags) error {
	if f.days < 0 {
		return r.usagef("--days must be positive")
	}
	return r.required(fs, "profile")
}

// certName is the subject, or the first SAN when the subject is empty.
func certName(c apitypes.Certificate) string {
	if c.Subject != "" {
		return c.Subject
	}
	if len(c.SANs) > 0 {
		return c.SANs[0]
	}
	return ""
}

// leafAndChain is what sign and issue write: the leaf, then the chain
// without the root.
func leafAndChain(res apitypes.IssuedCertificate) []byte {
	return []byte(ensureNewline(res.CertificatePEM) + ensureNewline(res.ChainPEM))
}

func (r *runner) issuedSummary(res apitypes.IssuedCertificate, wrote []string) {
	fmt.Fprintf(r.stderr, "Issued certificate %s for %s, valid until %s; wrote %s.\n",
		res.Serial, firstNonEmpty(certName(res.Certificate), "(no subject)"), showTime(res.NotAfter), strings.Join(wrote, ", "))
}

func runCertSign(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert sign")
	var f issueFlags
	f.register(fs)
	csrFile := fs.String("csr", "", "PEM or DER `FILE` holding the certificate signing request (- for standard input)")
	replaces := fs.String("replaces", "", "`SERIAL` of the certificate this one renews (links the two; it must share a name)")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "csr"); err != nil {
		return err
	}
	if err := r.checkIssueFlags(fs, &f); err != nil {
		return err
	}
	data, err := r.readInput(*csrFile, pki.MaxPEMInput)
	if err != nil {
		return fmt.Errorf("read CSR: %w", err)
	}
	csr, err := pki.ParseCSR(data)
	if err != nil {
		return &hintError{fmt.Errorf("read CSR %s: %w", *csrFile, err),
			"--csr must name a certificate signing request, PEM (BEGIN CERTIFICATE REQUEST) or DER; make one with: openssl req -new -key KEY -subj /CN=NAME -out req.pem"}
	}
	replacesSerial := ""
	if *replaces != "" {
		if replacesSerial, err = r.serialArg(*replaces); err != nil {
			return err
		}
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.Sign(ctx, apitypes.SignRequest{
		CSRPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})),
		Profile: f.profile, CA: f.ca, ValidityDays: f.days, Tags: f.tags, Owner: f.owner, AutoRenew: f.autoRenew,
		Replaces: replacesSerial,
	})
	err = c.explainNotFound(ctx, err, nameRef{"profile", f.profile}, nameRef{"CA", f.ca})
	var pending *pendingError
	if errors.As(err, &pending) {
		// Nothing was issued: nothing is written, and the exit code says so.
		if cf.json {
			if err := printJSON(r.stdout, pending.Request); err != nil {
				return err
			}
		}
		fmt.Fprintln(r.stderr, pendingMessage(pending.Request, f.out))
		return &codeError{code: exitPending}
	}
	if err != nil {
		return err
	}
	toFile := f.out != "" && f.out != "-"
	if toFile {
		if err := atomicfile.WriteFile(f.out, leafAndChain(res), 0o644); err != nil {
			return &hintError{err, "the certificate was issued; fetch it again with: certwright cert get " + res.Serial + " --chain --out FILE"}
		}
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	if !toFile {
		_, err := r.stdout.Write(leafAndChain(res))
		return err
	}
	r.issuedSummary(res, []string{f.out})
	return nil
}

func runCertIssue(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert issue")
	var f issueFlags
	f.register(fs)
	cn := fs.String("cn", "", "subject common name `CN`")
	var dns, ips, emails, uris listFlag
	fs.Var(&dns, "dns", "DNS `NAMES`, comma-separated")
	fs.Var(&ips, "ip", "IP `ADDRESSES`, comma-separated")
	fs.Var(&emails, "email", "email `ADDRESSES`, comma-separated")
	fs.Var(&uris, "uri", "`URIS`, comma-separated")
	var keyAlg keyAlgFlag
	fs.Var(&keyAlg, "key", "key `ALG` to generate: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519 (default: the profile's first key type)")
	keyOut := fs.String("key-out", "", "write the private key (PKCS#8 PEM) to `FILE`, mode 0600; an existing file is never replaced")
	p12Out := fs.String("p12-out", "", "write the key and certificates as PKCS#12 to `FILE`, mode 0600, instead of --key-out")
	p12Pass := fs.String("p12-password-file", "", "`FILE` holding the PKCS#12 password (8 characters or more)")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.checkIssueFlags(fs, &f); err != nil {
		return err
	}
	if *cn == "" && len(dns)+len(ips)+len(emails)+len(uris) == 0 {
		return r.usagef("name the certificate with --cn, --dns, --ip, --email or --uri")
	}
	req := apitypes.IssueRequest{
		Profile: f.profile, CA: f.ca, CommonName: *cn, DNSNames: dns, IPAddresses: ips, Emails: emails, URIs: uris,
		KeyAlgorithm: string(keyAlg), ValidityDays: f.days, Tags: f.tags,
		Owner: f.owner, AutoRenew: f.autoRenew,
	}
	var keyPath string
	switch {
	case *keyOut != "" && *p12Out != "":
		return r.usagef("--key-out and --p12-out exclude each other")
	case *keyOut != "":
		keyPath = *keyOut
		if *p12Pass != "" {
			return r.usagef("--p12-password-file goes with --p12-out")
		}
	case *p12Out != "":
		keyPath = *p12Out
		if *p12Pass == "" {
			return r.usagef("--p12-out needs --p12-password-file")
		}
		pw, err := r.readPassword(*p12Pass)
		if err != nil {
			return err
		}
		req.KeyFormat, req.Password = "pkcs12", pw
	default:
		return newUsageError("--key-out or --p12-out is required: the server hands out the private key only once",
			"run \"certwright cert issue --help\" for usage")
	}
	if keyPath == "-" {
		return r.usagef("the private key must go to a file, not standard output")
	}
	if f.out != "" && f.out != "-" && samePath(f.out, keyPath) {
		return r.usagef("--out and the key file must differ")
	}
	if err := checkNewFile(keyPath); err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.Issue(ctx, req)
	if err != nil {
		return c.explainNotFound(ctx, err, nameRef{"profile", f.profile}, nameRef{"CA", f.ca})
	}
	// The key first: the certificate can be fetched again, the key cannot.
	lost := "certificate " + res.Serial + " was issued but its key is lost; revoke it and issue again"
	var key []byte
	if req.KeyFormat == "pkcs12" {
		key = res.PKCS12
	} else {
		key = []byte(res.PrivateKeyPEM)
	}
	if len(key) == 0 {
		return &hintError{fmt.Errorf("the server's answer holds no private key"), lost}
	}
	if err := atomicfile.WriteNew(keyPath, key, 0o600); err != nil {
		return &hintError{err, lost}
	}
	clear(key)
	res.PrivateKeyPEM, res.PKCS12 = "", nil
	wrote := []string{keyPath}
	toFile := f.out != "" && f.out != "-"
	if toFile {
		if err := atomicfile.WriteFile(f.out, leafAndChain(res), 0o644); err != nil {
			return &hintError{err, "the key is in " + keyPath + "; fetch the certificate with: certwright cert get " + res.Serial + " --chain --out FILE"}
		}
		wrote = append(wrote, f.out)
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	if !toFile && (req.KeyFormat != "pkcs12" || f.out == "-") {
		if _, err := r.stdout.Write(leafAndChain(res)); err != nil {
			return err
		}
	}
	r.issuedSummary(res, wrote)
	return nil
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// readPassword reads a password file; a trailing line break is not part of it.
func (r *runner) readPassword(path string) (string, error) {
	data, err := r.readInput(path, maxPasswordFile)
	if err != nil {
		return "", fmt.Errorf("read PKCS#12 password: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if len(pw) < 8 {
		return "", fmt.Errorf("read PKCS#12 password: %s holds fewer than 8 characters", path)
	}
	return pw, nil
}

// Paging of cert list: a page of defaultListLimit unless --limit, every
// page up to maxListAll certificates with --all.
const (
	defaultListLimit = 50
	maxListAll       = 100000
)

func runCertList(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert list")
	var f certFilter
	fs.StringVar(&f.CA, "ca", "", "only certificates issued by `CA`")
	fs.StringVar(&f.Profile, "profile", "", "only certificates issued under `PROFILE`")
	fs.StringVar(&f.Status, "status", "", "only certificates in `STATUS`: valid (neither revoked nor expired), revoked or expired (unrevoked, past their expiry)")
	fs.StringVar(&f.SAN, "san", "", "only certificates for this DNS `NAME`, IP, email or URI")
	fs.StringVar(&f.Tag, "tag", "", "only certificates with `TAG`")
	fs.StringVar(&f.Source, "source", "", "only certificates from `SOURCE`: issued, acme, imported or discovered (found served by a scan)")
	fs.StringVar(&f.Sort, "sort", "expiry", "`ORDER` of the list: expiry (soonest first) or serial")
	var within durationFlag
	fs.Var(&within, "expiring-within", "only certificates that expire within `DURATION` (30d, 2w, 12h); revoked and renewed ones are left out unless --all")
	limit := fs.Int("limit", defaultListLimit, "list at most `N` certificates (one page)")
	all := fs.Bool("all", false, fmt.Sprintf("list every page (up to %d certificates), and with --expiring-within also the revoked and renewed ones", maxListAll))
	fs.StringVar(&f.After, "after", "", "continue after `POSITION`, the \"next\" of the previous page")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return r.usagef("--limit must be at least 1")
	}
	if *all && isSet(fs, "limit") {
		return r.usagef("--all and --limit exclude each other: --all lists every page")
	}
	switch f.Sort {
	case "expiry", "serial":
	default:
		return newUsageError(fmt.Sprintf("unknown --sort %q", f.Sort), suggest.Hint(f.Sort, []string{"expiry", "serial"}))
	}
	switch f.Status {
	case "", "valid", "revoked", "expired":
	default:
		return newUsageError(fmt.Sprintf("unknown --status %q", f.Status), suggest.Hint(f.Status, []string{"valid", "revoked", "expired"}))
	}
	if f.Source != "" {
		if _, err := inventory.ParseSource(f.Source); err != nil {
			return newUsageError(fmt.Sprintf("unknown --source %q", f.Source), suggest.Hint(f.Source, []string{"issued", "acme", "imported", "discovered"}))
		}
	}
	if within != 0 {
		f.ExpiringWithin = inventory.FormatWindow(time.Duration(within))
		f.Current = !*all
	}
	n := *limit
	if *all {
		n = maxListAll
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	list, err := listAll(ctx, c, f, n)
	if err != nil {
		return c.explainNotFound(ctx, err, nameRef{"CA", f.CA})
	}
	if cf.json {
		return printJSON(r.stdout, list)
	}
	if len(list.Certificates) == 0 {
		fmt.Fprintln(r.stderr, "No certificates.")
		return nil
	}
	now := r.now()
	t := newTable(r.stdout, "SERIAL", "NAME", "PROFILE", "CA", "NOT AFTER", "DAYS LEFT", "STATUS", "REQUESTER")
	for _, cert := range list.Certificates {
		t.row(listSerial(cert), firstNonEmpty(firstSAN(cert), cert.Subject), cert.Profile, cert.CA, tableTime(cert.NotAfter),
			strconv.Itoa(daysLeft(cert.NotAfter, now)), listStatus(cert, now), cert.Requester)
	}
	if err := t.flush(); err != nil {
		return err
	}
	switch {
	case list.Next != "" && *all:
		fmt.Fprintf(r.stderr, "Listed the first %d certificates; narrow the list with --ca, --profile, --status, --san or --tag.\n", maxListAll)
	case list.Next != "":
		fmt.Fprintf(r.stderr, "More certificates match: add --after %s for the next page, or --all for every page.\n", list.Next)
	}
	return nil
}

// listSerial is the serial column: an imported or discovered
// certificate's key is its 64-digit SHA-256 fingerprint, shortened here
// (cert list --json and cert show have it whole).
func listSerial(c apitypes.Certificate) string {
	const short = 16
	if (c.Source == "imported" || c.Source == "discovered") && len(c.Serial) > short {
		return c.Serial[:short] + "…"
	}
	return c.Serial
}

func firstSAN(c apitypes.Certificate) string {
	if len(c.SANs) > 0 {
		return c.SANs[0]
	}
	return ""
}

// daysLeft counts whole days until notAfter; negative once expired.
func daysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}

// listStatus is the status column: revoked, expired or valid, and
// "renewed" when a renewal superseded the certificate.
func listStatus(c apitypes.Certificate, now time.Time) string {
	s := c.Status
	if s == "valid" && !c.NotAfter.After(now) {
		s = "expired"
	}
	if c.RenewedBy != "" {
		s += ",renewed"
	}
	return s
}

// maxPage is the largest page the API serves.
const maxPage = 1000

// listAll follows the "next" links until limit certificates are collected.
// Next in the answer is set only when more remain.
func listAll(ctx context.Context, c *client, f certFilter, limit int) (apitypes.CertificateList, error) {
	out := apitypes.CertificateList{Certificates: []apitypes.Certificate{}}
	// A page holds at least one certificate or moves past 20,000 rows
	// outside the caller's scope, so this bounds the requests.
	for range limit + maxListAll/maxPage + 1 {
		f.Limit = min(limit-len(out.Certificates), maxPage)
		page, err := c.ListCertificates(ctx, f)
		if err != nil {
			return out, err
		}
		out.Certificates = append(out.Certificates, page.Certificates...)
		out.Next = page.Next
		// An empty page with a next cursor is the server skipping rows
		// outside the caller's scope: follow it.
		if page.Next == "" || len(out.Certificates) >= limit {
			return out, nil
		}
		if page.Next == f.After {
			return out, fmt.Errorf("list certificates: the server sent the same page twice (after %s)", f.After)
		}
		f.After = page.Next
	}
	return out, nil
}

func (r *runner) serialArg(s string) (string, error) {
	n, err := pki.NormalizeSerial(s)
	if err != nil {
		return "", r.usagef("%s", strings.TrimPrefix(err.Error(), "pki: "))
	}
	return n, nil
}

func runCertShow(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert show")
	pos, err := r.parse(fs, args, "SERIAL")
	if err != nil {
		return err
	}
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	cert, err := c.GetCertificate(ctx, serial)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(r.stdout, cert)
	}
	fl := newFields(r.stdout)
	fl.add("Serial", cert.Serial)
	fl.add("Subject", cert.Subject)
	fl.add("SANs", strings.Join(cert.SANs, ", "))
	status := cert.Status
	if cert.Revocation != nil {
		status += " (" + cert.Revocation.Reason + ", " + showTime(cert.Revocation.RevokedAt) + ")"
	}
	fl.add("Status", status)
	fl.add("Not before", showTime(cert.NotBefore))
	fl.add("Not after", showTime(cert.NotAfter))
	fl.add("CA", cert.CA)
	fl.add("Profile", cert.Profile)
	fl.add("Requester", cert.Requester)
	key := cert.KeyAlgorithm
	if cert.KeyBits > 0 {
		key += " " + strconv.Itoa(cert.KeyBits)
	}
	fl.add("Key", strings.TrimSpace(key))
	fl.add("Signature algorithm", cert.SignatureAlgorithm)
	fl.add("SHA-256 fingerprint", cert.Fingerprint)
	fl.add("Tags", strings.Join(cert.Tags, ", "))
	fl.add("Lint warnings", strings.Join(cert.LintWarnings, "; "))
	fl.add("Created", showTime(cert.CreatedAt))
	for _, kv := range [][2]string{
		{"Source", cert.Source}, {"Issuer", cert.Issuer}, {"Issuer serial", cert.IssuerSerial}, {"Owner", cert.Owner},
		{"Replaces", cert.Replaces}, {"Renewed by", cert.RenewedBy}, {"Renewal kind", cert.RenewalKind},
		{"Last renewal error", cert.RenewError},
	} {
		if kv[1] != "" {
			fl.add(kv[0], kv[1])
		}
	}
	if cert.AutoRenew {
		fl.add("Auto-renew", "yes")
	}
	if k := cert.KeyCompromised; k != nil {
		by := ""
		if k.ReportedBy != "" {
			by = " by " + k.ReportedBy
		}
		fl.add("Key compromised", fmt.Sprintf("reported %s (%s %s%s); never certified again", showTime(k.ReportedAt), k.Source, k.Ref, by))
	}
	return fl.flush()
}

func runCertGet(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert get")
	chain := fs.Bool("chain", false, "append the chain without the root")
	out := fs.String("out", "", "write the PEM to `FILE` (mode 0644) instead of standard output")
	pos, err := r.parse(fs, args, "SERIAL")
	if err != nil {
		return err
	}
	serial, err := r.serialArg(pos[0])
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	data, err := c.CertificatePEM(ctx, serial, *chain)
	if err != nil {
		return err
	}
	if cf.json {
		if *out != "" && *out != "-" {
			if err := atomicfile.WriteFile(*out, data, 0o644); err != nil {
				return err
			}
		}
		return printJSON(r.stdout, map[string]string{"serial": serial, "pem": string(data)})
	}
	return r.writeOutput(*out, data, 0o644)
}
