package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

const personRequestHelp = "With --sso, NAME is your e-mail address and the certificate is your own short-lived client\n" +
	"certificate (profile person: client authentication, 12 hours unless --validity, at most 24),\n" +
	"for the token \"certwright login --sso\" saved: the server issues it only to such a sign-in and\n" +
	"only for the address your identity provider verified. It then authenticates to the API as you\n" +
	"(mTLS: --client-cert FILE --client-key FILE). The key is made here; --key-out defaults to\n" +
	"EMAIL.key and --out to EMAIL.pem in the current directory.\n\n"

// personRequest is "cert request --sso" as given on the command line.
type personRequest struct {
	email, out, keyOut string
	keyType            pki.KeyAlgorithm
	validity           time.Duration
	force              bool
}

// personRequestExcludes are the flags of "cert request" that choose what
// the person profile fixes.
var personRequestExcludes = []string{"profile", "ca", "days", "tag", "owner", "auto-renew", "san"}

// personRequest makes a key here and has the server certify it as the
// caller's own person certificate, then writes key and chain.
func (r *runner) personRequest(ctx context.Context, fs *flag.FlagSet, cf *clientFlags, p personRequest) error {
	for _, name := range personRequestExcludes {
		if isSet(fs, name) {
			return r.usagef("--%s does not go with --sso: a person certificate is issued under the person profile, by the default CA, for your verified address alone", name)
		}
	}
	names, err := pki.ParseNames([]string{"email:" + p.email})
	if err != nil || !strings.Contains(p.email, "@") {
		return r.usagef("--sso takes your e-mail address, as your identity provider has it: certwright cert request --sso alice@example.com")
	}
	if p.validity < 0 {
		return r.usagef("--validity must be positive, such as 12h")
	}
	p.out, p.keyOut = personOutputs(p.email, p.out, p.keyOut)
	if p.keyOut == "-" || p.out == "-" {
		return r.usagef("--out and --key-out name files: a private key is never printed")
	}
	if samePath(p.out, p.keyOut) {
		return r.usagef("--out and --key-out must differ")
	}
	for _, path := range []string{p.keyOut, p.out} {
		if err := checkOutputFile(path, p.force); err != nil {
			return err
		}
	}
	key, err := p.keyType.Generate(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate %s key: %w", p.keyType, err)
	}
	csr, err := pki.NewCSR(rand.Reader, key, p.email, names)
	if err != nil {
		return err
	}
	c, err := r.connect(cf)
	if err != nil {
		return err
	}
	defer c.close()
	req := apitypes.PersonCertificateRequest{CSRPEM: string(csr)}
	if p.validity != 0 {
		req.Validity = p.validity.String()
	}
	res, err := c.PersonCertificate(ctx, req)
	if err != nil {
		return personRefusal(err, p.email)
	}
	if err := checkIssuedFor(res, key); err != nil {
		return &hintError{err, "nothing was written; revoke certificate " + res.Serial + " (certwright cert revoke " + res.Serial + " --reason superseded)"}
	}
	if err := writeKey(p.keyOut, key, p.force); err != nil {
		return &hintError{err, "certificate " + res.Serial + " was issued but its key is lost; ask for another (it expires by itself)"}
	}
	if err := atomicfile.WriteFile(p.out, leafAndChain(res), 0o644); err != nil {
		return &hintError{err, "the key is in " + p.keyOut + "; fetch the certificate with: certwright cert get " + res.Serial + " --chain --out FILE"}
	}
	if cf.json {
		return printJSON(r.stdout, res)
	}
	r.issuedSummary(res, []string{p.keyOut + " (key, 0600)", p.out + " (certificate and chain)"})
	fmt.Fprintf(r.stderr, "It authenticates to the API as you until then: --client-cert %s --client-key %s\n", p.out, p.keyOut)
	return nil
}

// personOutputs are the files a person certificate goes to: as given,
// else EMAIL.pem and EMAIL.key in the current directory.
func personOutputs(email, out, keyOut string) (string, string) {
	if out == "" {
		out = email + ".pem"
	}
	if keyOut == "" {
		keyOut = email + ".key"
	}
	return out, keyOut
}

// personRefusal adds the fix to the server's refusals that a person can
// act on.
func personRefusal(err error, email string) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.status == http.StatusForbidden && ae.body.Rule == apitypes.RuleSSOSignIn:
		return &hintError{ae, "run certwright login --sso first (it saves the token of a sign-in through your identity provider in your context), then ask again"}
	case ae.status == http.StatusBadRequest && ae.body.Rule == "names.email":
		return &hintError{ae, email + " must be the address your identity provider verified when you signed in (certwright whoami shows who you are); sign in as that person with certwright login --sso"}
	}
	return err
}

// PersonCertificate has the server certify the caller's own person
// certificate.
func (c *client) PersonCertificate(ctx context.Context, req apitypes.PersonCertificateRequest) (apitypes.IssuedCertificate, error) {
	var out apitypes.IssuedCertificate
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("encode request: %w", err)
	}
	_, err = c.request(ctx, http.MethodPost, "/api/v1/certificates/person", nil, body, "application/json", &out)
	return out, err
}
