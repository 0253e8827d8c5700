// Package pkipub owns the plain-HTTP edge that relying parties use: CA
// certificates for AIA caIssuers under /ca/, and /healthz. CRLs (/crl/) and
// OCSP (/ocsp/) are reserved paths on this listener.
package pkipub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/certwright/certwright/internal/ca"
)

// CAs reads CA records.
type CAs interface {
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
}

// Pinger reports whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// New returns the plain-HTTP handler.
func New(cas CAs, db Pinger, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ca/{file}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutSuffix(r.PathValue("file"), ".crt")
		if !ok || !strings.HasPrefix(id, "ca_") {
			http.NotFound(w, r)
			return
		}
		c, err := cas.GetCA(r.Context(), id)
		if err != nil || len(c.CertDER) == 0 || c.ID != id {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(c.CertDER)
	})
	mux.Handle("GET /healthz", Health(db, log))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("not found\n"))
	})
	return mux
}

// Health answers "ok" while the store answers, 503 otherwise. Both
// listeners serve it.
func Health(db Pinger, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := db.Ping(r.Context()); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("health check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}
