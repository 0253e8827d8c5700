package lint_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
)

// signed signs tmpl under inter for real: CheckExisting sees what a
// relying party sees.
func signed(t *testing.T, tmpl *x509.Certificate, inter ca) []byte {
	t.Helper()
	key := mustKey(t, pki.ECDSAP256)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.cert, key.Public(), inter.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func findingNames(fs []lint.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

func TestCheckExisting(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	_, inter := newChain(t, pki.ECDSAP256)

	good := goodLeaf(t, mustKey(t, pki.ECDSAP256).Public())
	res, err := l.CheckExisting(signed(t, good, inter), false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Clean() {
		t.Errorf("a good leaf: failed %v, warned %v", findingNames(res.Failed), findingNames(res.Warnings))
	}

	// No subject and no SAN breaks RFC 5280 (an error); no subject key
	// identifier in a leaf is a warning.
	bad := goodLeaf(t, mustKey(t, pki.ECDSAP256).Public())
	bad.Subject, bad.DNSNames, bad.IPAddresses, bad.SubjectKeyId = pkix.Name{}, nil, nil, nil
	res, err = l.CheckExisting(signed(t, bad, inter), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(findingNames(res.Failed), "e_subject_empty_without_san") {
		t.Errorf("empty subject without SAN: failed %v, want e_subject_empty_without_san", findingNames(res.Failed))
	}
	if !slices.Contains(findingNames(res.Warnings), "w_ext_subject_key_identifier_missing_sub_cert") {
		t.Errorf("no SKI: warned %v, want w_ext_subject_key_identifier_missing_sub_cert", findingNames(res.Warnings))
	}
	for _, f := range res.Failed {
		if f.Status != "error" && f.Status != "fatal" {
			t.Errorf("failed lint %s has status %q", f.Name, f.Status)
		}
	}
	for _, f := range res.Warnings {
		if f.Status != "warn" {
			t.Errorf("warning %s has status %q", f.Name, f.Status)
		}
	}
	if !slices.IsSorted(findingNames(res.Failed)) || !slices.IsSorted(findingNames(res.Warnings)) {
		t.Error("findings are not sorted by name")
	}

	// The CA/Browser Forum set sees more: an internal name is no public TLS name.
	res, err = l.CheckExisting(signed(t, goodLeaf(t, mustKey(t, pki.ECDSAP256).Public()), inter), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clean() {
		t.Error("the CA/B Forum set found nothing wrong with .internal names and no policies")
	}
}

func TestCheckExistingRefusesBadInput(t *testing.T) {
	t.Parallel()
	l := newLinter(t)
	for name, der := range map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("not a certificate"),
		"too long": make([]byte, lint.MaxExistingDER+1),
	} {
		if _, err := l.CheckExisting(der, false); err == nil || !strings.HasPrefix(err.Error(), "lint: ") {
			t.Errorf("%s: err = %v, want a lint: error", name, err)
		}
	}
}
