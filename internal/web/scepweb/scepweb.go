// Package scepweb serves SCEP (RFC 8894) over HTTP at /scep/NAME:
// GetCACaps, GetCACert and PKIOperation (GET or POST). It decodes and
// bounds what devices send and writes what the scep package answers;
// it holds no key.
package scepweb

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/scep"
)

// Service is what the edge asks of the SCEP core.
type Service interface {
	CACaps(ctx context.Context, name string) (string, error)
	CACert(ctx context.Context, name string) ([]byte, error)
	PKIOperation(ctx context.Context, name string, peer scep.Peer, body []byte) ([]byte, bool, error)
}

var _ Service = (*scep.Service)(nil)

// Deps are the handler's dependencies.
type Deps struct {
	Log     *slog.Logger
	Service Service
	// Timeout bounds each request (10s when zero).
	Timeout time.Duration
	// Clock drives the per-source limit (the system clock when nil).
	Clock func() time.Time
	// RefusedPerSecond and RefusedBurst are the per-source budget of
	// PKIOperations refused (a FAILURE CertRep or a malformed message):
	// a source past it is answered 429 with Retry-After before its
	// message is read, let alone decrypted with the RA key. Zero takes
	// DefaultRefusedPerSecond and DefaultRefusedBurst.
	RefusedPerSecond float64
	RefusedBurst     int
	// LimitLoopback limits loopback peers too. They are exempt by
	// default, as on the plain-HTTP listener's other paths: behind a
	// reverse proxy every request comes from the proxy, which is the
	// place to limit.
	LimitLoopback bool
}

// Defaults of the per-source budget of refused PKIOperations: a device
// that fails a few times is not held up; a source guessing challenges
// gets about one RSA decryption a second.
const (
	DefaultRefusedPerSecond = 1
	DefaultRefusedBurst     = 20
)

// Handler serves /scep/.
type Handler struct {
	d   Deps
	mux *http.ServeMux
	// refused counts each source's refused PKIOperations.
	refused *netsource.Limiter
}

// Prefix is where SCEP is served.
const Prefix = "/scep/"

// New builds the handler.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Service == nil {
		return nil, errors.New("scepweb: logger and service are required")
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.RefusedPerSecond <= 0 {
		d.RefusedPerSecond = DefaultRefusedPerSecond
	}
	if d.RefusedBurst <= 0 {
		d.RefusedBurst = DefaultRefusedBurst
	}
	h := &Handler{d: d, mux: http.NewServeMux(), refused: netsource.NewLimiter(d.Clock, d.RefusedPerSecond, d.RefusedBurst)}
	// Some clients append the CGI name of the first SCEP server.
	for _, p := range []string{Prefix + "{name}", Prefix + "{name}/pkiclient.exe"} {
		h.mux.HandleFunc("GET "+p, h.serve)
		h.mux.HandleFunc("POST "+p, h.serve)
	}
	return h, nil
}

// ServeHTTP serves a SCEP request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// maxGetMessage bounds a PKIOperation sent with GET: the base64 of the
// largest message accepted by POST.
var maxGetMessage = base64.StdEncoding.EncodedLen(scep.MaxMessage)

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.d.Timeout)
	defer cancel()
	name := r.PathValue("name")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	switch op := r.URL.Query().Get("operation"); op {
	case "GetCACaps":
		caps, err := h.d.Service.CACaps(ctx, name)
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, caps)
	case "GetCACert":
		der, err := h.d.Service.CACert(ctx, name)
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-ra-cert")
		w.Write(der)
	case "PKIOperation":
		peer := scep.Peer{Source: netsource.RemoteHost(r.RemoteAddr), RequestID: newRequestID()}
		w.Header().Set("X-Request-Id", peer.RequestID)
		key := peer.Source
		if !h.d.LimitLoopback && isLoopback(key) {
			key = ""
		}
		if wait := h.wait(key); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, "scep: too many refused requests from this address; retry later", http.StatusTooManyRequests)
			return
		}
		body, err := h.message(w, r)
		if err != nil {
			h.spend(key)
			h.fail(w, err)
			return
		}
		rep, refused, err := h.d.Service.PKIOperation(ctx, name, peer, body)
		if refused || errors.Is(err, scep.ErrMalformed) || errors.Is(err, scep.ErrNotFound) {
			h.spend(key)
		}
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-pki-message")
		w.Write(rep)
	default:
		http.Error(w, "scep: unknown operation: use GetCACaps, GetCACert or PKIOperation", http.StatusBadRequest)
	}
}

var errTooLarge = errors.New("scepweb: message too large")

// message reads a PKIOperation's DER: the POST body, or GET's base64
// message parameter (RFC 8894 §4.1).
func (h *Handler) message(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodGet {
		q := r.URL.Query().Get("message")
		if len(q) > maxGetMessage {
			return nil, errTooLarge
		}
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(q))
		if err != nil {
			return nil, errors.Join(scep.ErrMalformed, errors.New("the message parameter is not base64"))
		}
		return der, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, scep.MaxMessage))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, errors.Join(scep.ErrMalformed, err)
	}
	return body, nil
}

// fail answers an error no CertRep could carry.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, "scep: internal error"
	switch {
	case errors.Is(err, errTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, "scep: message too large (at most 64 KiB)"
	case errors.Is(err, scep.ErrMalformed):
		status, msg = http.StatusBadRequest, err.Error()+" (send a DER PKCS#7 SignedData as RFC 8894 describes)"
	case errors.Is(err, scep.ErrNotFound):
		status, msg = http.StatusNotFound, "scep: no such SCEP provisioner"
	case errors.Is(err, scep.ErrDisabled):
		status, msg = http.StatusForbidden, "scep: this SCEP provisioner is disabled"
	case errors.Is(err, scep.ErrRAUnusable):
		// The service logged it once; the text names no secret.
		status, msg = http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "scep: timed out; try again"
	default:
		h.d.Log.Error("scep request failed", "err", err)
	}
	if status < 500 {
		h.d.Log.Info("scep request refused", "status", status, "err", err)
	}
	http.Error(w, msg, status)
}

// wait is how long source must wait; "" (an exempt peer) never waits.
func (h *Handler) wait(source string) time.Duration {
	if source == "" {
		return 0
	}
	return h.refused.Wait(source)
}

// spend counts a refused request of source; "" is exempt.
func (h *Handler) spend(source string) {
	if source != "" {
		h.refused.Fail(source)
	}
}

func isLoopback(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// newRequestID names a PKIOperation in the audit trail and in the
// X-Request-Id answer header.
func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
