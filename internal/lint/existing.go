package lint

import (
	"errors"
	"fmt"
	"sort"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"
)

// MaxExistingDER bounds the DER CheckExisting accepts: a certificate is a
// few kilobytes, and zlint's parser should never see an arbitrary blob.
const MaxExistingDER = 64 << 10

// Result is what zlint found in an already-signed certificate: the lints
// that failed (status error or fatal) and those that warned, each sorted by
// name.
type Result struct {
	Failed   []Finding
	Warnings []Finding
}

// Clean reports whether no lint failed or warned.
func (r *Result) Clean() bool { return len(r.Failed) == 0 && len(r.Warnings) == 0 }

// CheckExisting runs zlint over a certificate that is already signed —
// one issued here earlier or imported from elsewhere — exactly as it is:
// no throwaway re-signing, so the signature algorithm and issuer are the
// real ones. With cabf set, the CA/Browser Forum TLS lints run as well.
// A certificate zlint cannot parse is an error; failing lints are not (they
// are in the Result), because the certificate exists either way.
func (l *Linter) CheckExisting(der []byte, cabf bool) (*Result, error) {
	if len(der) == 0 {
		return nil, errors.New("lint: no certificate DER to check")
	}
	if len(der) > MaxExistingDER {
		return nil, fmt.Errorf("lint: certificate of %d bytes exceeds %d", len(der), MaxExistingDER)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lint: zlint cannot parse the certificate: %w", err)
	}
	res := l.lint(zc, cabf)
	out := &Result{}
	for name, r := range res {
		if r == nil {
			continue
		}
		f := Finding{Name: name, Status: r.Status.String(), Details: r.Details}
		switch r.Status {
		case zl.Warn:
			out.Warnings = append(out.Warnings, f)
		case zl.Error, zl.Fatal:
			out.Failed = append(out.Failed, f)
		}
	}
	sort.Slice(out.Failed, func(i, j int) bool { return out.Failed[i].Name < out.Failed[j].Name })
	sort.Slice(out.Warnings, func(i, j int) bool { return out.Warnings[i].Name < out.Warnings[j].Name })
	return out, nil
}
