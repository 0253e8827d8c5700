package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/metrics"
	"github.com/certwright/certwright/internal/revoke"
)

// revocationHealth tells the lifecycle which CAs' revocation data is late:
// the latest refresh failed, or the scheduled one is overdue by more than
// a few maintenance ticks (so a failure the hooks did not see still shows).
type revocationHealth struct{ svc *revoke.Service }

func (h revocationHealth) Stale(now time.Time) []lifecycle.StaleRevocation {
	var out []lifecycle.StaleRevocation
	for _, f := range h.svc.Freshness() {
		crl, ocsp := f.Stale(now, revoke.StaleGrace)
		if crl {
			out = append(out, lifecycle.StaleRevocation{CAID: f.CAID, What: "crl", NextUpdate: f.CRLNextUpdate, Error: f.CRLError})
		}
		if ocsp {
			out = append(out, lifecycle.StaleRevocation{CAID: f.CAID, What: "ocsp", NextUpdate: f.OCSPNextUpdate, Error: f.OCSPError})
		}
	}
	return out
}

// metricsAuth admits to /metrics on the HTTPS listener a principal, by API
// token or client certificate, allowed to read every certificate: the
// metrics name them all, across CAs.
func (a *App) metricsAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.metricsPrincipal(r)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="certwright"`)
			http.Error(w, "metrics: an API token or client certificate is required", http.StatusUnauthorized)
			return
		}
		if err := p.Allow(authz.PermCertRead, authz.Resource{}); err != nil {
			http.Error(w, "metrics: "+err.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *App) metricsPrincipal(r *http.Request) (authz.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return authz.Principal{}, &authz.AuthError{Reason: "Authorization header is not a bearer token"}
		}
		return a.auth.Authenticate(r.Context(), strings.TrimSpace(tok))
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return a.auth.AuthenticateCertificate(r.Context(), r.TLS.PeerCertificates[0], r.TLS.PeerCertificates[1:])
	}
	return authz.Principal{}, &authz.AuthError{Reason: "no credentials"}
}

// metricsListener opens metrics.listen and reads its token, or returns
// nil when no separate listener is configured.
func (a *App) metricsListener() (net.Listener, []byte, error) {
	mc := a.cfg.Metrics
	if mc.Listen == "" {
		return nil, nil, nil
	}
	var token []byte
	if mc.TokenFile != "" {
		var err error
		if token, err = metrics.LoadToken(mc.TokenFile); err != nil {
			return nil, nil, fmt.Errorf("app: %w", err)
		}
	}
	ln, err := net.Listen("tcp", mc.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("app: listen %s (metrics.listen): %w", mc.Listen, err)
	}
	return ln, token, nil
}
