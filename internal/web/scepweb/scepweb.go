// Package scepweb serves SCEP (RFC 8894) over HTTP at /scep/NAME:
// GetCACaps, GetCACert and PKIOperation (GET or POST). It decodes and
// bounds what devices send and writes what the scep package answers;
// it holds no key.
package scepweb

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/scep"
)

// Service is what the edge asks of the SCEP core.
type Service interface {
	CACaps(ctx context.Context, name string) (string, error)
	CACert(ctx context.Context, name string) ([]byte, error)
	PKIOperation(ctx context.Context, name, source string, body []byte) ([]byte, error)
}

var _ Service = (*scep.Service)(nil)

// Deps are the handler's dependencies.
type Deps struct {
	Log     *slog.Logger
	Service Service
	// Timeout bounds each request (10s when zero).
	Timeout time.Duration
}

// Handler serves /scep/.
type Handler struct {
	d   Deps
	mux *http.ServeMux
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
	h := &Handler{d: d, mux: http.NewServeMux()}
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
		body, err := h.message(w, r)
		if err != nil {
			h.fail(w, err)
			return
		}
		rep, err := h.d.Service.PKIOperation(ctx, name, source(r), body)
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

// source is the device's address, for the audit trail.
func source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
