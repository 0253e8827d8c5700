package cli

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/certwright/certwright/internal/ceremony"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// The offline root ceremony runs on an air-gapped machine: these commands
// never contact a server or open a database (internal/ceremony does the
// work; this file reads flags, passphrases and confirmations).

func ceremonyCommands() []*command {
	return []*command{
		{
			name: "root", summary: "create an offline root: its key (encrypted file or PKCS#11 token), self-signed certificate and transcript, in a new directory",
			args: "--dir DIR --cn CN --operator NAME [--operator NAME ...] [--org O] [--key ALG] [--validity 20y] [--path-len N] [--passphrase-file FILE] [--json]\n" +
				"  [--key-provider pkcs11 --pkcs11-module PATH (--pkcs11-token LABEL | --pkcs11-token-serial SERIAL) (--pkcs11-pin-file FILE | --pkcs11-pin-env VAR) [--pkcs11-key-label L] [--pkcs11-adopt]]",
			example: "certwright ceremony root --dir /media/vault/root-2026 --cn \"Example Root CA 2026\" --org Example --operator alice --operator bob\n" +
				"certwright ceremony root --dir /media/vault/root-2026 --cn \"Example Root CA 2026\" --operator alice --key-provider pkcs11 \\\n" +
				"    --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token root-hsm --pkcs11-pin-env HSM_PIN",
			more: "The key is written as encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA-256, 1,000,000 iterations, AES-256-CBC) to DIR/" + ceremony.KeyFileName + ";\n" +
				"the passphrase (at least 12 characters) is read from --passphrase-file or asked twice on the terminal, never from a flag.\n" +
				"With --key-provider pkcs11 the key is made in the token instead (private, sensitive, never extractable, sign only),\n" +
				"labelled --pkcs11-key-label (default \"root:CN\"); --pkcs11-adopt takes the existing key of that label. The PIN comes\n" +
				"from --pkcs11-pin-file (mode 0600) or the variable --pkcs11-pin-env names, never from a flag; the later steps find the key again from DIR/" + ceremony.StateFileName + ".\n" +
				"Take DIR/" + ceremony.RootFileName + " to the online server: certwright ca import-root --cert root.pem --name NAME",
			run: runCeremonyRoot,
		},
		{
			name: "sign-intermediate", summary: "sign a subordinate CA's CSR (from ca create-external) with the offline root",
			args:    "--dir DIR --csr FILE --out FILE --crl-url URL --operator NAME [--operator NAME ...] [--validity 5y] [--path-len N] [--ca-issuers-url URL] [--passphrase-file FILE | --pkcs11-pin-file FILE | --pkcs11-pin-env VAR] [--yes] [--json]",
			example: "certwright ceremony sign-intermediate --dir /media/vault/root-2026 --csr issuing.csr --out issuing.pem --crl-url http://pki.example.internal:8080/crl/ca_0123456789abcdef.crl --operator alice",
			more: "What will be signed is shown first and must be confirmed on the terminal (or with --yes).\n" +
				"--crl-url is where the online server serves the root's uploaded CRL: certwright ca import-root prints it.\n" + pkcs11StepHelp,
			run: runCeremonySign,
		},
		{
			name: "crl", summary: "sign the offline root's next CRL, optionally revoking subordinate CAs it signed",
			args:    "--dir DIR --out FILE --operator NAME [--operator NAME ...] [--revoke SERIAL --reason REASON ...] [--next-update 90d] [--passphrase-file FILE | --pkcs11-pin-file FILE | --pkcs11-pin-env VAR] [--json]",
			example: "certwright ceremony crl --dir /media/vault/root-2026 --out root-2.crl --operator alice\ncertwright ceremony crl --dir /media/vault/root-2026 --out root-3.crl --revoke 019a3b... --reason ca_compromise --operator alice",
			more: "The CRL is DER, or PEM when FILE ends in .pem. Upload it to the online server: certwright ca import-crl --ca NAME --crl FILE.\n" +
				"REASON is one of " + strings.Join(pki.ReasonNames(), ", ") + "; one --reason applies to every --revoke, or give one per --revoke.\n" + pkcs11StepHelp,
			run: runCeremonyCRL,
		},
	}
}

// pkcs11StepHelp is the help of the steps after the root's on a root key
// kept in a token.
const pkcs11StepHelp = "A root key in a PKCS#11 token is found again from DIR/" + ceremony.StateFileName + " (module, token serial, key label and CKA_ID);\n" +
	"give its PIN with --pkcs11-pin-file or --pkcs11-pin-env, and --pkcs11-module or --pkcs11-token(-serial) only where they differ here."

// ceremonyFlags are the flags every ceremony step shares.
type ceremonyFlags struct {
	dir, passFile string
	operators     listFlag
	json          bool
	p11           ceremony.PKCS11Unlock
}

func (f *ceremonyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", "", "the ceremony directory `DIR`")
	fs.Var(&f.operators, "operator", "`NAME` of an operator present (repeat for each; recorded in the transcript)")
	fs.StringVar(&f.passFile, "passphrase-file", "", "read the root key file's passphrase from `FILE` (default: ask on the terminal)")
	fs.BoolVar(&f.json, "json", false, "print the transcript entry as JSON")
	fs.StringVar(&f.p11.PINFile, "pkcs11-pin-file", "", "`FILE` (mode 0600) holding the PKCS#11 token's user PIN; the PIN is never a flag")
	fs.StringVar(&f.p11.PINEnv, "pkcs11-pin-env", "", "name of the environment `VARIABLE` holding the PKCS#11 token's user PIN")
	fs.StringVar(&f.p11.Module, "pkcs11-module", "", "absolute `PATH` of the PKCS#11 library (after ceremony root: only if not the one recorded)")
	fs.StringVar(&f.p11.TokenLabel, "pkcs11-token", "", "`LABEL` of the PKCS#11 token (after ceremony root: only if not the one recorded)")
	fs.StringVar(&f.p11.TokenSerial, "pkcs11-token-serial", "", "`SERIAL` number of the PKCS#11 token, instead of its label")
}

// pkcs11Set reports whether any PKCS#11 flag was given.
func (f *ceremonyFlags) pkcs11Set() bool { return f.p11 != ceremony.PKCS11Unlock{} }

// pinFlags checks that the token's PIN comes from exactly one place, and
// that no key file passphrase is given for a key in a token.
func (r *runner) pinFlags(f *ceremonyFlags) error {
	if f.passFile != "" {
		return r.usagef("--passphrase-file is the passphrase of a key file; the root key is in a PKCS#11 token: give its PIN with --pkcs11-pin-file or --pkcs11-pin-env")
	}
	if (f.p11.PINFile == "") == (f.p11.PINEnv == "") {
		return r.usagef("the root key is in a PKCS#11 token: give its user PIN with exactly one of --pkcs11-pin-file FILE and --pkcs11-pin-env VARIABLE (never the PIN itself)")
	}
	if f.p11.TokenLabel != "" && f.p11.TokenSerial != "" {
		return r.usagef("name the token by one of --pkcs11-token and --pkcs11-token-serial")
	}
	return nil
}

// day is the unit of the ceremony's default validities.
const day = 24 * time.Hour

func (d durationFlag) value() time.Duration { return time.Duration(d) }

// ceremonyDuration is a flag holding a duration with years: 20y, 90d, 2w, 36h.
type ceremonyDuration struct{ d *durationFlag }

func (c ceremonyDuration) String() string {
	if c.d == nil {
		return ""
	}
	if y := time.Duration(*c.d); y > 0 && y%(365*day) == 0 {
		return strconv.FormatInt(int64(y/(365*day)), 10) + "y"
	}
	return c.d.String()
}

func (c ceremonyDuration) Set(s string) error {
	v, err := ceremony.ParseDuration(s)
	if err != nil {
		return err
	}
	*c.d = durationFlag(v)
	return nil
}

// session builds the ceremony session: the operators, this host, the
// system clock and the server's linter.
func (r *runner) session(f *ceremonyFlags) (ceremony.Session, error) {
	if len(f.operators) == 0 {
		return ceremony.Session{}, r.usagef("name the operators present: --operator NAME, once for each")
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	l, err := lint.New(lint.Options{})
	if err != nil {
		return ceremony.Session{}, err
	}
	return ceremony.Session{Clock: clock.Real{}, Linter: l, Host: host, Operators: f.operators}, nil
}

// maxPassphraseFile bounds a passphrase file.
const maxPassphraseFile = 4 << 10

// passphrase returns how the root key's passphrase is obtained: from
// --passphrase-file (a trailing line break is not part of it), or typed on
// the terminal without echo (twice for a new key). Never from a flag
// value: it would sit in the shell history and the process list.
func (r *runner) passphrase(f *ceremonyFlags) (ceremony.PassphraseFunc, error) {
	if f.passFile != "" {
		return func(bool) ([]byte, error) {
			data, err := r.readInput(f.passFile, maxPassphraseFile)
			if err != nil {
				return nil, err
			}
			p := []byte(strings.TrimRight(string(data), "\r\n"))
			if len(p) == 0 {
				return nil, fmt.Errorf("%s is empty", f.passFile)
			}
			return p, nil
		}, nil
	}
	in, ok := r.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, newUsageError("no passphrase for the root key: the input is not a terminal",
			"pass --passphrase-file FILE, or run the ceremony on a terminal to type it")
	}
	return func(confirm bool) ([]byte, error) {
		read := func(prompt string) ([]byte, error) {
			fmt.Fprint(r.stderr, prompt)
			b, err := term.ReadPassword(int(in.Fd()))
			fmt.Fprintln(r.stderr)
			return b, err
		}
		p, err := read("Root key passphrase: ")
		if err != nil || !confirm {
			return p, err
		}
		again, err := read("Same passphrase again: ")
		if err != nil {
			return nil, err
		}
		if string(again) != string(p) {
			return nil, fmt.Errorf("the two passphrases differ")
		}
		return p, nil
	}, nil
}

func runCeremonyRoot(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("ceremony root", flag.ContinueOnError)
	var f ceremonyFlags
	f.register(fs)
	cn := fs.String("cn", "", "subject common name `CN` of the root")
	org := fs.String("org", "", "subject organization `O`")
	key := keyAlgFlag(pki.ECDSAP384)
	fs.Var(&key, "key", "root key `ALG`: ecdsa-p384, ecdsa-p256, rsa-4096 or rsa-3072")
	validity := durationFlag(20 * 365 * day)
	fs.Var(ceremonyDuration{&validity}, "validity", "validity `DURATION`, e.g. 20y, 3650d")
	pathLen := fs.Int("path-len", 1, "at most `N` CAs below the root, -1 for unlimited")
	provider := fs.String("key-provider", ceremony.SourceFile, "`PROVIDER` that makes and keeps the root key: file (encrypted PKCS#8 in DIR) or pkcs11 (in a token, never extractable)")
	keyLabel := fs.String("pkcs11-key-label", "", "`LABEL` (CKA_LABEL) of the root key in the token (default \"root:CN\")")
	adopt := fs.Bool("pkcs11-adopt", false, "use the existing token key --pkcs11-key-label names instead of generating one")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "dir", "cn"); err != nil {
		return err
	}
	s, err := r.session(&f)
	if err != nil {
		return err
	}
	spec := ceremony.RootSpec{
		CommonName: *cn, Organization: *org, KeyAlg: pki.KeyAlgorithm(key), Validity: validity.value(), PathLen: *pathLen,
	}
	var keys ceremony.KeySource
	switch *provider {
	case ceremony.SourceFile:
		if f.pkcs11Set() || *keyLabel != "" || *adopt {
			return r.usagef("the --pkcs11-* flags go with --key-provider pkcs11")
		}
		pass, err := r.passphrase(&f)
		if err != nil {
			return err
		}
		keys = &ceremony.FileKey{Path: filepath.Join(f.dir, ceremony.KeyFileName), Passphrase: pass}
	case ceremony.SourcePKCS11:
		if keys, err = r.rootTokenKey(ctx, fs, &f, &spec, *keyLabel, *adopt); err != nil {
			return err
		}
	default:
		return r.usagef("--key-provider %q: want file or pkcs11", *provider)
	}
	defer keys.Close()
	d, e, err := ceremony.CreateRoot(ctx, s, f.dir, keys, spec)
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(r.stdout, e)
	}
	fmt.Fprintf(r.stdout, "Created the offline root in %s.\n", d.Path())
	r.printEntry(d, e)
	fmt.Fprintf(r.stdout, "\nOn the online server: certwright ca import-root --cert root.pem --name NAME\n(copy %s; check its SHA-256 fingerprint there against the one above).\n",
		filepath.Join(d.Path(), ceremony.RootFileName))
	return nil
}

// rootTokenKey returns the key source of ceremony root --key-provider
// pkcs11. To adopt a key, it opens the key first: the root's key type is
// the key's (--key, when given, must agree).
func (r *runner) rootTokenKey(ctx context.Context, fs *flag.FlagSet, f *ceremonyFlags, spec *ceremony.RootSpec, label string, adopt bool) (ceremony.KeySource, error) {
	if err := r.required(fs, "pkcs11-module"); err != nil {
		return nil, err
	}
	if (f.p11.TokenLabel == "") == (f.p11.TokenSerial == "") {
		return nil, r.usagef("name the token with exactly one of --pkcs11-token LABEL and --pkcs11-token-serial SERIAL")
	}
	if err := r.pinFlags(f); err != nil {
		return nil, err
	}
	if label == "" {
		if adopt {
			return nil, r.usagef("--pkcs11-adopt needs --pkcs11-key-label: the label of the key to adopt")
		}
		label = ceremony.DefaultKeyLabel(spec.CommonName)
	}
	keys, err := ceremony.NewPKCS11Key(ceremony.PKCS11Options{
		Module: f.p11.Module, TokenLabel: f.p11.TokenLabel, TokenSerial: f.p11.TokenSerial,
		PINFile: f.p11.PINFile, PINEnv: f.p11.PINEnv, KeyLabel: label, Adopt: adopt,
	})
	if err != nil || !adopt {
		return keys, err
	}
	sg, err := keys.Open(ctx)
	if err == nil && !isSet(fs, "key") {
		var alg pki.KeyAlgorithm
		if alg, err = pki.AlgorithmOf(sg.Public()); err == nil {
			spec.KeyAlg = alg
		}
	}
	if err != nil {
		keys.Close()
		return nil, err
	}
	return keys, nil
}

func runCeremonySign(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("ceremony sign-intermediate", flag.ContinueOnError)
	var f ceremonyFlags
	f.register(fs)
	csrFile := fs.String("csr", "", "the subordinate CA's CSR `FILE` (PEM or DER; from certwright ca create-external)")
	out := fs.String("out", "", "write the signed certificate (PEM) to `FILE`")
	validity := durationFlag(5 * 365 * day)
	fs.Var(ceremonyDuration{&validity}, "validity", "validity `DURATION`, e.g. 5y, 1825d (never past the root's)")
	pathLen := fs.Int("path-len", 0, "at most `N` CAs below the subordinate CA, -1 for unlimited")
	crlURL := fs.String("crl-url", "", "CRL distribution point `URL`: where the online server serves the root's CRL (ca import-root prints it)")
	aiaURL := fs.String("ca-issuers-url", "", "caIssuers `URL` where the root certificate is served (ca import-root prints it)")
	yes := fs.Bool("yes", false, "sign without asking for confirmation")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "dir", "csr", "out", "crl-url"); err != nil {
		return err
	}
	s, err := r.session(&f)
	if err != nil {
		return err
	}
	d, err := ceremony.Open(f.dir)
	if err != nil {
		return err
	}
	// How the key is unlocked is checked before anything is shown; the
	// key itself is opened only once the plan is confirmed.
	keys, err := r.rootKeys(d, &f)
	if err != nil {
		return err
	}
	defer keys.Close()
	csr, err := r.readInput(*csrFile, ceremony.MaxCSR)
	if err != nil {
		return fmt.Errorf("read CSR: %w", err)
	}
	plan, err := d.PlanIntermediate(s, csr, ceremony.IntermediateSpec{
		Validity: validity.value(), PathLen: *pathLen, CRLURL: *crlURL, CAIssuersURL: *aiaURL,
	})
	if err != nil {
		return err
	}
	// A module is checked, and shown, before anything is confirmed or
	// loaded.
	mod, err := ceremony.CheckKeyModule(keys)
	if err != nil {
		return err
	}
	r.printPlan(d, plan, keys.Ref(), mod)
	if !*yes {
		if err := r.confirm("Sign this certificate with the root key?"); err != nil {
			return err
		}
	}
	signed, err := plan.Sign(ctx, keys)
	if err != nil {
		return err
	}
	if done, err := r.deliver(d, &f, *out, pki.CertPEM(signed.Cert.Raw), signed.File, signed.Entry); done {
		return err
	}
	fmt.Fprintf(r.stdout, "\nSigned; the certificate is in %s (a copy in %s).\n", *out, signed.File)
	r.printEntry(d, signed.Entry)
	fmt.Fprintf(r.stdout, "\nOn the online server: certwright ca import NAME --cert %s\n", *out)
	return nil
}

func runCeremonyCRL(ctx context.Context, r *runner, args []string) error {
	fs := flag.NewFlagSet("ceremony crl", flag.ContinueOnError)
	var f ceremonyFlags
	f.register(fs)
	out := fs.String("out", "", "write the CRL to `FILE` (DER; PEM when FILE ends in .pem)")
	var serials, reasons listFlag
	fs.Var(&serials, "revoke", "revoke the certificate with `SERIAL` (hex; repeat for several)")
	fs.Var(&reasons, "reason", "revocation `REASON` of --revoke: "+strings.Join(pki.ReasonNames(), ", "))
	next := durationFlag(90 * day)
	fs.Var(ceremonyDuration{&next}, "next-update", "the CRL's lifetime `DURATION`: sign and upload the next one before it ends")
	if _, err := r.parse(fs, args); err != nil {
		return err
	}
	if err := r.required(fs, "dir", "out"); err != nil {
		return err
	}
	revs, err := r.revocationPairs(serials, reasons)
	if err != nil {
		return err
	}
	s, err := r.session(&f)
	if err != nil {
		return err
	}
	d, err := ceremony.Open(f.dir)
	if err != nil {
		return err
	}
	keys, err := r.rootKeys(d, &f)
	if err != nil {
		return err
	}
	defer keys.Close()
	mod, err := ceremony.CheckKeyModule(keys)
	if err != nil {
		return err
	}
	if mod != nil {
		// Said before the module is loaded; on stderr with --json.
		w := r.stdout
		if f.json {
			w = r.stderr
		}
		fmt.Fprintf(w, "Signing with the root key in the PKCS#11 token %s\n", tokenKeyName(keys.Ref()))
		fmt.Fprintf(w, "  loaded from the module %s\n", moduleName(mod))
	}
	c, err := d.SignCRL(ctx, s, keys, ceremony.CRLSpec{Revoke: revs, NextUpdate: next.value()})
	if err != nil {
		return err
	}
	data := c.DER
	if strings.HasSuffix(strings.ToLower(*out), ".pem") {
		data = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.DER})
	}
	if done, err := r.deliver(d, &f, *out, data, c.File, c.Entry); done {
		return err
	}
	fmt.Fprintf(r.stdout, "Signed CRL number %d (%d entries); it is in %s (a copy in %s).\n", c.Number, c.Entries, *out, c.File)
	r.printEntry(d, c.Entry)
	fmt.Fprintf(r.stdout, "\nOn the online server, before %s: certwright ca import-crl --ca NAME --crl %s\n", showTime(c.NextUpdate), *out)
	return nil
}

// rootKeys returns the source of the root key of d: for a key file, its
// passphrase is asked for (from --passphrase-file or the terminal) when it
// is opened; for a key in a token, the PIN is read from --pkcs11-pin-file
// or --pkcs11-pin-env.
func (r *runner) rootKeys(d *ceremony.Dir, f *ceremonyFlags) (ceremony.KeySource, error) {
	if d.State().Key.Source == ceremony.SourcePKCS11 {
		if err := r.pinFlags(f); err != nil {
			return nil, err
		}
		return d.KeySource(ceremony.Unlock{PKCS11: f.p11})
	}
	if f.pkcs11Set() {
		return nil, r.usagef("the root key of %s is the key file %s, not in a PKCS#11 token: leave out the --pkcs11-* flags", d.Path(), d.State().Key.Location)
	}
	pass, err := r.passphrase(f)
	if err != nil {
		return nil, err
	}
	return d.KeySource(ceremony.Unlock{Passphrase: pass})
}

// deliver writes what a step signed to out (a copy, kept, stays in the
// ceremony directory) and, with --json, prints the step's transcript
// entry; done says the command has nothing more to print.
func (r *runner) deliver(d *ceremony.Dir, f *ceremonyFlags, out string, data []byte, kept string, e *ceremony.Entry) (done bool, err error) {
	if err := r.writeOutput(out, data, 0o644); err != nil {
		return true, fmt.Errorf("%w (a copy is in %s)", err, filepath.Join(d.Path(), kept))
	}
	if f.json {
		return true, printJSON(r.stdout, e)
	}
	return false, nil
}

// revocationPairs pairs --revoke serials with --reason names: one reason
// for all, or one each.
func (r *runner) revocationPairs(serials, reasons []string) ([]ceremony.Revocation, error) {
	if len(serials) == 0 {
		if len(reasons) > 0 {
			return nil, r.usagef("--reason needs --revoke SERIAL")
		}
		return nil, nil
	}
	if len(reasons) != 1 && len(reasons) != len(serials) {
		return nil, r.usagef("give one --reason for every --revoke, or one for all (%d --revoke, %d --reason)", len(serials), len(reasons))
	}
	out := make([]ceremony.Revocation, len(serials))
	for i, s := range serials {
		name := reasons[0]
		if len(reasons) > 1 {
			name = reasons[i]
		}
		reason, err := pki.ParseReason(name)
		if err != nil {
			return nil, r.usagef("%s", strings.TrimPrefix(err.Error(), "pki: "))
		}
		out[i] = ceremony.Revocation{Serial: s, Reason: reason}
	}
	return out, nil
}

// confirm asks a yes/no question on the terminal; anything but "yes" (or
// no terminal) refuses.
func (r *runner) confirm(question string) error {
	if !isTerminal(r.stdin) {
		return newUsageError("not confirmed: the input is not a terminal", "check what is shown above, then run the same command with --yes")
	}
	fmt.Fprintf(r.stderr, "%s Type yes to go on: ", question)
	line, err := readLine(r.stdin, maxAnswer)
	if err != nil {
		return err
	}
	if strings.TrimSpace(strings.ToLower(line)) != "yes" {
		return &codeError{code: exitError, err: fmt.Errorf("not confirmed: nothing was signed")}
	}
	return nil
}

// readLine reads one line of at most max bytes, byte by byte so that
// nothing after it is consumed.
func readLine(in interface{ Read([]byte) (int, error) }, max int) (string, error) {
	var b [1]byte
	var line []byte
	for len(line) <= max {
		n, err := in.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return string(line), nil
			}
			line = append(line, b[0])
		}
		if err != nil {
			return string(line), err
		}
	}
	return "", fmt.Errorf("the answer is longer than %d bytes", max)
}

// tokenKeyName names the key in a token ref records.
func tokenKeyName(ref ceremony.KeyRef) string {
	p := ref.PKCS11
	if p == nil {
		return ref.Location
	}
	// Before the token is opened only what selects it is known.
	token := p.TokenLabel
	switch {
	case p.TokenLabel == "":
		token = "with serial " + p.TokenSerial
	case p.TokenSerial != "":
		token += " (serial " + p.TokenSerial + ")"
	}
	return fmt.Sprintf("%s, key %s, CKA_ID %s", token, p.KeyLabel, p.KeyID)
}

// moduleName names a module checked to be loaded, for the operators to
// compare with the paper record.
func moduleName(m *ceremony.KeyModule) string {
	s := m.Path
	if m.File != m.Path {
		s += " (" + m.File + ")"
	}
	return s + ", SHA-256 " + m.SHA256
}

// printPlan shows what a subordinate CA certificate will say, and, for a
// root key in a token, which module will be loaded to sign it.
func (r *runner) printPlan(d *ceremony.Dir, p *ceremony.Plan, ref ceremony.KeyRef, mod *ceremony.KeyModule) {
	fmt.Fprintf(r.stdout, "The offline root %s will sign:\n", d.Root().Subject)
	fl := newFields(r.stdout)
	fl.add("  Subject", p.Subject)
	fl.add("  Key", string(p.KeyAlgorithm)+", SPKI SHA-256 "+p.SPKISHA256)
	fl.add("  CSR SHA-256", p.CSRSHA256)
	fl.add("  Serial", p.Serial)
	fl.add("  Not before", showTime(p.NotBefore))
	na := showTime(p.NotAfter)
	if p.Capped {
		na += " (the root's expiry)"
	}
	fl.add("  Not after", na)
	fl.add("  Path length", pathLen(&p.PathLen))
	fl.add("  CRL URL", p.CRLURL)
	fl.add("  caIssuers URL", p.CAIssuersURL)
	fl.add("  Lint warnings", strings.Join(p.LintWarnings, "; "))
	if mod != nil {
		fl.add("  Signed in PKCS#11 token", tokenKeyName(ref))
		fl.add("  PKCS#11 module", moduleName(mod))
	}
	fl.flush()
}

// printEntry shows a transcript entry for the paper record.
func (r *runner) printEntry(d *ceremony.Dir, e *ceremony.Entry) {
	fl := newFields(r.stdout)
	fl.add("Transcript entry", fmt.Sprintf("%d (%s), %s", e.Seq, e.Action, filepath.Join(d.Path(), ceremony.TranscriptFileName)))
	if seq, h := d.TranscriptHead(); seq == e.Seq {
		fl.add("Transcript line SHA-256", h)
	}
	fl.add("Time", showTime(e.Time))
	fl.add("Operators", strings.Join(e.Operators, ", "))
	fl.add("Host", e.Host)
	fl.add("Root key", fmt.Sprintf("%s (%s %s)", e.Key.Algorithm, e.Key.Source, e.Key.Location))
	if p := e.Key.PKCS11; p != nil {
		fl.add("PKCS#11 module", p.Module)
		fl.add("PKCS#11 token", fmt.Sprintf("%s (serial %s)", p.TokenLabel, p.TokenSerial))
		fl.add("PKCS#11 key", fmt.Sprintf("label %s, CKA_ID %s", p.KeyLabel, p.KeyID))
	}
	fl.add("Root key SPKI SHA-256", e.Key.SPKISHA256)
	if c := e.Certificate; c != nil {
		fl.add("Certificate subject", c.Subject)
		fl.add("Certificate issuer", c.Issuer)
		fl.add("Certificate serial", c.Serial)
		fl.add("Validity", showTime(c.NotBefore)+" to "+showTime(c.NotAfter))
		fl.add("Certificate SHA-256", c.SHA256)
	}
	if c := e.CSR; c != nil {
		fl.add("CSR SHA-256", c.SHA256)
	}
	if c := e.CRL; c != nil {
		fl.add("CRL number", strconv.FormatInt(c.Number, 10))
		fl.add("CRL this/next update", showTime(c.ThisUpdate)+" / "+showTime(c.NextUpdate))
		fl.add("CRL entries", strconv.Itoa(c.Entries))
		for _, rv := range c.Revoked {
			fl.add("Revoked now", rv.Serial+" ("+rv.Reason.String()+")")
		}
		fl.add("CRL SHA-256", c.SHA256)
	}
	fl.flush()
}
