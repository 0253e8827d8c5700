package cli

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// defaultRequestProfile is the profile "cert request" uses without --profile.
const defaultRequestProfile = "web_server"

func certRequestCommands() []*command {
	return []*command{{
		name: "request", summary: "make a key here, have its CSR signed, write key and chain (allowed to people)",
		args: "NAME [--san NAME,...] [--profile P] [--key-type ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096|ed25519] [--ca CA] [--days N] --out FILE --key-out FILE [--force] [--json] | --sso EMAIL [--validity 12h] [--out FILE] [--key-out FILE]",
		example: "certwright cert request app.example.internal --san 10.0.0.5 --out app.pem --key-out app.key\n" +
			"certwright cert request alice@example.internal --profile client_auth --key-type rsa-3072 --out alice.pem --key-out alice.key\n" +
			"certwright cert request --sso alice@example.com",
		more: "The private key is generated on this machine and never sent: only a CSR goes to the server, so\n" +
			"people (human principals) may use this where \"cert issue\" is for machines only. NAME is the\n" +
			"subject common name and the first SAN; --san adds more: an IP address, an email address (has @),\n" +
			"a URI (has ://), else a DNS name; prefix dns:, ip:, email: or uri: to say which.\n\n" +
			"Nothing is written until the certificate is issued: a refusal leaves no file behind. --key-out\n" +
			"(mode 0600) holds the PKCS#8 PEM key, --out (mode 0644) the certificate and its intermediates,\n" +
			"leaf first, without the root. Existing files are refused unless --force.\n\n" +
			"When the profile requires approval, only the key is written (it cannot be made again) and the\n" +
			"command exits 3 with the request ID; once approved: certwright request fetch ID --out FILE.\n\n" +
			personRequestHelp +
			strings.TrimSuffix(exitCodesHelp, "\n"),
		run: runCertRequest,
	}}
}

func runCertRequest(ctx context.Context, r *runner, args []string) error {
	fs, cf := newClientFlagSet("cert request")
	var f issueFlags
	f.register(fs)
	fs.Lookup("profile").DefValue = defaultRequestProfile
	f.profile = defaultRequestProfile
	var sans listFlag
	fs.Var(&sans, "san", "more subject alternative `NAMES`, comma-separated (DNS, IP, email, URI)")
	keyType := keyAlgFlag(pki.ECDSAP256)
	fs.Var(&keyType, "key-type", "key `ALG` to generate here: ec-p256 (ecdsa-p256), ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519")
	keyOut := fs.String("key-out", "", "write the private key (PKCS#8 PEM) to `FILE`, mode 0600 (required; with --sso, default EMAIL.key)")
	force := fs.Bool("force", false, "replace --out and --key-out if they exist")
	sso := fs.Bool("sso", false, "NAME is your e-mail address: get your short-lived person certificate with the token of certwright login --sso")
	validity := fs.Duration("validity", 0, "with --sso: lifetime `DURATION` such as 12h or 90m (default: the person profile's 12h; at most 24h)")
	fs.Lookup("validity").DefValue = "" // the server's default, not 0s
	pos, err := r.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if *sso {
		return r.personRequest(ctx, fs, cf, personRequest{email: strings.TrimSpace(pos[0]), out: f.out, keyOut: *keyOut,
			keyType: pki.KeyAlgorithm(keyType), validity: *validity, force: *force})
	}
	if isSet(fs, "validity") {
		return r.usagef("--validity goes with --sso; a certificate under another profile takes --days N")
	}
	if err := r.required(fs, "out", "key-out"); err != nil {
		return err
	}
	if err := r.checkIssueFlags(fs, &f); err != nil {
		return err
	}
	if *keyOut == "-" || f.out == "-" {
		return r.usagef("--out and --key-out name files: a private key is never printed")
	}
	if samePath(f.out, *keyOut) {
		return r.usagef("--out and --key-out must differ")
	}
	name := strings.TrimSpace(pos[0])
	all := []string{name}
	for _, s := range sans {
		if !slices.ContainsFunc(all, func(n string) bool { return strings.EqualFold(n, s) }) {
			all = append(all, s)
		}
	}
	names, err := pki.ParseNames(all)
	if err != nil {
		return r.usagef("%s", strings.TrimPrefix(err.Error(), "pki: "))
	}
	for _, p := range []string{*keyOut, f.out} {
		if err := checkOutputFile(p, *force); err != nil {
			return err
		}
	}

	alg := pki.KeyAlgorithm(keyType)
	key, err := alg.Generate(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate %s key: %w", alg, err)
	}
	csr, err := pki.NewCSR(rand.Reader, key, commonNameOf(name), names)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	res, err := c.Sign(ctx, apitypes.SignRequest{
		CSRPEM: string(csr), Profile: f.profile, CA: f.ca, ValidityDays: f.days, Tags: f.tags, Owner: f.owner,
		AutoRenew: f.autoRenew,
	})
	err = c.explainNotFound(ctx, err, nameRef{"profile", f.profile}, nameRef{"CA", f.ca})
	var pending *pendingError
	if errors.As(err, &pending) {
		// The certificate comes later, for this key: the key must be kept now.
		if err := writeKey(*keyOut, key, *force); err != nil {
			return &hintError{err, "request " + pending.Request.ID + " is pending, but its key is lost; reject it and request again"}
		}
		if cf.json {
			if err := printJSON(r.stdout, pending.Request); err != nil {
				return err
			}
		}
		fmt.Fprintf(r.stderr, "Wrote the private key to %s (mode 0600); keep it: the certificate will be for this key.\n", *keyOut)
		fmt.Fprintln(r.stderr, pendingMessage(pending.Request, f.out))
		return &codeError{code: exitPending}
	}
	if err != nil {
		return err
	}
	if err := checkIssuedFor(res, key); err != nil {
		return &hintError{err, "nothing was written; revoke certificate " + res.Serial + " (certwright cert revoke " + res.Serial + " --reason superseded)"}
	}
	lost := "certificate " + res.Serial + " was issued but its key is lost; revoke it (certwright cert revoke " + res.Serial + " --reason superseded) and request again"
	if err := writeKey(*keyOut, key, *force); err != nil {
		return &hintError{err, lost}
	}
	if err := atomicfile.WriteFile(f.out, leafAndChain(res), 0o644); err != nil {
		return &hintError{err, "the key is in " + *keyOut + "; fetch the certificate with: certwright cert get " + res.Serial + " --chain --out FILE"}
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	r.issuedSummary(res, []string{*keyOut + " (key, 0600)", f.out + " (certificate and chain)"})
	return nil
}

// commonNameOf is NAME without a type prefix ("dns:app" -> "app").
func commonNameOf(name string) string {
	if kind, rest, ok := strings.Cut(name, ":"); ok && slices.Contains([]string{"dns", "ip", "email", "uri"}, strings.ToLower(kind)) {
		if !strings.HasPrefix(rest, "//") {
			return rest
		}
	}
	return name
}

// checkOutputFile fails before anything is issued when path exists (and
// --force is not given) or when its directory does not.
func checkOutputFile(path string, force bool) error {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return &hintError{fmt.Errorf("cannot write %s: directory %s does not exist", path, filepath.Dir(path)), "create the directory first, or name another file"}
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	case st.IsDir():
		return &hintError{fmt.Errorf("%s is a directory", path), "name a file"}
	case !force:
		return &hintError{fmt.Errorf("%s already exists; refusing to overwrite it", path),
			"choose another file name, or pass --force to replace it"}
	}
	return nil
}

// writeKey writes key as PKCS#8 PEM, mode 0600: a new file only (O_EXCL),
// or with force an atomic replacement.
func writeKey(path string, key crypto.Signer, force bool) error {
	data, err := pki.PrivateKeyPEM(key)
	if err != nil {
		return err
	}
	defer clear(data)
	if force {
		return atomicfile.WriteFile(path, data, 0o600)
	}
	return atomicfile.WriteNew(path, data, 0o600)
}

// checkIssuedFor makes sure the server's certificate certifies our key.
func checkIssuedFor(res apitypes.IssuedCertificate, key crypto.Signer) error {
	certs, err := pki.ParseCertificates([]byte(res.CertificatePEM))
	if err != nil {
		return fmt.Errorf("the server's answer holds no certificate: %w", err)
	}
	pub, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("the server's certificate %s is not for the key made here", res.Serial)
	}
	return nil
}
