package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
)

// DefaultStoreTimeout bounds a request when Deps.StoreTimeout is zero.
const DefaultStoreTimeout = 5 * time.Second

// slowRouteTimeout bounds the routes marked slow: they stream (audit
// export, reports) or make keys and walk many records (managed-key
// issuance, CA creation, bulk revocation). It matches the HTTPS server's
// write timeout, past which no answer can be written anyway.
const slowRouteTimeout = time.Minute

// slow marks a route whose work legitimately outlasts the store timeout.
func slow(rt Route) Route {
	rt.slow = true
	return rt
}

// deadline is how long a request on rt may take: every store call it
// makes shares this one deadline, so a stalled database gives a 503 after
// it instead of a hung request.
func (h *Handler) deadline(rt Route) time.Duration {
	d := h.d.StoreTimeout
	if d <= 0 {
		d = DefaultStoreTimeout
	}
	if rt.slow {
		d = max(d, slowRouteTimeout)
	}
	return d
}

// unavailable reports an error that says nothing about the request, only
// that the store did not answer in time or could not be used: the caller
// should retry later (503), and nothing was refused.
func unavailable(err error) bool {
	return errors.Is(err, authz.ErrUnavailable) || store.Unavailable(err)
}

// writeUnavailable answers 503 with Retry-After.
func (h *Handler) writeUnavailable(w http.ResponseWriter) {
	secs := max(1, int(math.Ceil(h.deadline(Route{}).Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, http.StatusServiceUnavailable, "service unavailable",
		"the server's database did not answer in time or cannot be written; retry later", "")
}
