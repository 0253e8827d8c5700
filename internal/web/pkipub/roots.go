package pkipub

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"slices"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// CALister lists every CA record.
type CALister interface {
	ListCAs(ctx context.Context) ([]*ca.CA, error)
}

// RootsPath is where Roots is mounted: "certwright login" fetches the
// roots here over the very TLS connection it is deciding to trust, and
// keeps the one whose SHA-256 fingerprint the operator gave it.
const RootsPath = "/roots.pem"

// Roots serves the self-signed root certificates this instance's CAs chain
// to, as PEM: its own roots (offline roots included), and the top of an
// externally signed CA's chain. They are public; a client must pin one by fingerprint, never
// trust them for having been served.
func Roots(cas CALister, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := cas.ListCAs(r.Context())
		if err != nil {
			log.Warn("list root certificates", "err", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("root certificates unavailable\n"))
			return
		}
		var out [][]byte
		add := func(der []byte) {
			if !slices.ContainsFunc(out, func(d []byte) bool { return bytes.Equal(d, der) }) {
				out = append(out, der)
			}
		}
		for _, c := range list {
			if c.Status == ca.StatusDeleted || len(c.CertDER) == 0 {
				continue
			}
			switch {
			case c.Kind == ca.KindRoot && (!c.External || c.Offline()):
				add(c.CertDER)
			case len(c.ChainDER) > 0:
				top := c.ChainDER[len(c.ChainDER)-1]
				if cert, err := x509.ParseCertificate(top); err == nil && pki.SelfSigned(cert) {
					add(top)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(pki.CertPEM(out...))
	})
}
