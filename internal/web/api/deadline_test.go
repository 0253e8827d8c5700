package api

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/netsource"
)

// tStoreAuth fails the way Authenticator does when its store fails:
// "down" at once, "hung" when the request's deadline passes.
type tStoreAuth struct{}

func (tStoreAuth) Authenticate(ctx context.Context, token string) (authz.Principal, error) {
	switch token {
	case "down":
		return authz.Principal{}, fmt.Errorf("%w: store: get token: connection refused", authz.ErrUnavailable)
	case "hung":
		<-ctx.Done()
		return authz.Principal{}, fmt.Errorf("%w: store: get token: %w", authz.ErrUnavailable, ctx.Err())
	}
	return authz.Principal{}, &authz.AuthError{Reason: "unknown token"}
}

func (tStoreAuth) AuthenticateCertificate(context.Context, *x509.Certificate, []*x509.Certificate) (authz.Principal, error) {
	return authz.Principal{}, &authz.AuthError{Reason: "unknown certificate"}
}

type tCountRefusals struct {
	mu sync.Mutex
	n  int
}

func (c *tCountRefusals) Add(audit.Refusal) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

// TestCredentialCheckUnavailableIs503: a token that cannot be checked
// because the store failed or hung is answered 503 with Retry-After within
// the store timeout, and is neither counted nor audited as a refusal, nor
// spends the source's refusal budget.
func TestCredentialCheckUnavailableIs503(t *testing.T) {
	t.Parallel()
	refusals := &tCountRefusals{}
	h := &Handler{
		d: Deps{Log: slog.New(slog.DiscardHandler), Clock: clock.Real{}, Auth: tStoreAuth{}, Refusals: refusals,
			MaxBody: 1 << 10, StoreTimeout: 200 * time.Millisecond},
		limiter: netsource.NewLimiter(time.Now, 0.01, 1),
	}
	srv := h.wrap(route("GET", "/api/v1/x", "x.read", func(w http.ResponseWriter, _ *http.Request, _ authz.Principal) error {
		w.WriteHeader(http.StatusOK)
		return nil
	}, authz.PermCARead))
	do := func(token string) (*httptest.ResponseRecorder, time.Duration) {
		r := httptest.NewRequest("GET", "/api/v1/x", nil)
		r.RemoteAddr = "192.0.2.9:40000"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		start := time.Now()
		srv.ServeHTTP(w, r)
		return w, time.Since(start)
	}
	for _, token := range []string{"down", "hung", "down", "hung"} {
		w, took := do(token)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s store: %d (Retry-After %q, WWW-Authenticate %q): %s; want 503 with Retry-After",
				token, w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), w.Body)
		}
		if took > 2*time.Second {
			t.Errorf("%s store: answered after %s, the store timeout is 200ms", token, took)
		}
	}
	if refusals.n != 0 {
		t.Errorf("%d refusals counted for requests nobody refused", refusals.n)
	}
	// The source's budget (one refusal) is intact: a bad token is a 401,
	// not a 429.
	if w, _ := do("bad"); w.Code != http.StatusUnauthorized {
		t.Errorf("bad token after the outage: %d, want 401", w.Code)
	}
}
