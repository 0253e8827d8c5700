// Package estapi is the EST edge (RFC 7030): it serves
// /.well-known/est/[NAME/]{cacerts,csrattrs,simpleenroll,simplereenroll,
// serverkeygen}, decodes and size-limits bodies, takes the TLS client
// chain, HTTP Basic credentials and channel binding from the request,
// calls the est service, and is the one place where its errors become
// HTTP statuses (as plain text, which EST clients show).
package estapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/errtext"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/netsource"
)

// Prefix is where EST is served (RFC 7030 3.2.2).
const Prefix = "/.well-known/est/"

// Media types of RFC 7030.
const (
	typePKCS10    = "application/pkcs10"
	typeCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
	typeCSRAttrs  = "application/csrattrs"
	typePKCS8     = "application/pkcs8"
)

// Service is the EST core this edge calls (est.Service).
type Service interface {
	CACerts(ctx context.Context, provisioner string) ([]*x509.Certificate, error)
	CSRAttrs(ctx context.Context, provisioner string) ([]byte, error)
	Enrol(ctx context.Context, req est.Request) (*est.Result, error)
}

var _ Service = (*est.Service)(nil)

// Deps are the handler's dependencies.
type Deps struct {
	Log     *slog.Logger
	Service Service
	// Timeout bounds each request (0: 30s).
	Timeout time.Duration
}

// Handler serves EST.
type Handler struct{ d Deps }

// New builds the handler.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Service == nil {
		return nil, errors.New("estapi: logger and service are required")
	}
	if d.Timeout <= 0 {
		d.Timeout = 30 * time.Second
	}
	return &Handler{d: d}, nil
}

// route splits an EST path into provisioner label and operation.
func route(path string) (label, op string, ok bool) {
	rest, found := strings.CutPrefix(path, Prefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		op = parts[0]
	case 2:
		label, op = parts[0], parts[1]
		if label == "" {
			return "", "", false
		}
	default:
		return "", "", false
	}
	switch op {
	case est.OpCACerts, est.OpCSRAttrs, est.OpEnroll, est.OpReenroll, est.OpServerKeyGen:
		return label, op, true
	}
	return "", "", false
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	label, op, ok := route(r.URL.Path)
	if !ok {
		writeText(w, http.StatusNotFound, "no EST operation at this path: use /.well-known/est/[NAME/]cacerts, csrattrs, simpleenroll, simplereenroll or serverkeygen")
		return
	}
	want := http.MethodPost
	if op == est.OpCACerts || op == est.OpCSRAttrs {
		want = http.MethodGet
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeText(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s", op, want))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.d.Timeout)
	defer cancel()
	var err error
	switch op {
	case est.OpCACerts:
		err = h.cacerts(ctx, w, label)
	case est.OpCSRAttrs:
		err = h.csrattrs(ctx, w, label)
	default:
		err = h.enrol(ctx, w, r, label, op)
	}
	if err != nil {
		h.fail(w, r, op, err)
	}
}

func (h *Handler) cacerts(ctx context.Context, w http.ResponseWriter, label string) error {
	chain, err := h.d.Service.CACerts(ctx, label)
	if err != nil {
		return err
	}
	der, err := est.CertsOnly(chain...)
	if err != nil {
		return err
	}
	writeBase64(w, typeCertsOnly, der)
	return nil
}

func (h *Handler) csrattrs(ctx context.Context, w http.ResponseWriter, label string) error {
	der, err := h.d.Service.CSRAttrs(ctx, label)
	if err != nil {
		return err
	}
	writeBase64(w, typeCSRAttrs, der)
	return nil
}

var errMediaType = errors.New("estapi: unsupported media type")

func (h *Handler) enrol(ctx context.Context, w http.ResponseWriter, r *http.Request, label, op string) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != typePKCS10 {
		return fmt.Errorf("%w: %s takes Content-Type %s (a base64-encoded PKCS#10 request), not %q", errMediaType, op, typePKCS10, r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, est.MaxBody))
	if err != nil {
		return err
	}
	// The core decodes the body once the device has authenticated.
	req := est.Request{Provisioner: label, Op: op, Body: body, Source: netsource.RemoteHost(r.RemoteAddr), RequestID: newRequestID()}
	// Credentials other than HTTP Basic are no credential here: the core
	// answers 401 naming what the provisioner takes.
	if user, pwd, ok := r.BasicAuth(); ok {
		req.HasBasic, req.BasicUser, req.BasicPwd = true, user, pwd
	}
	if r.TLS != nil {
		req.PeerChain = r.TLS.PeerCertificates
		req.ChannelBinding = channelBinding(r.TLS)
	}
	res, err := h.d.Service.Enrol(ctx, req)
	if err != nil {
		return err
	}
	leaf, err := est.CertsOnly(res.Leaf)
	if err != nil {
		return err
	}
	if op != est.OpServerKeyGen {
		writeBase64(w, typeCertsOnly, leaf)
		return nil
	}
	key, err := est.PKCS8(res.Key)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, part := range []struct {
		typ string
		der []byte
	}{{typePKCS8, key}, {typeCertsOnly, leaf}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.typ}, "Content-Transfer-Encoding": {"base64"}})
		if err != nil {
			return err
		}
		if _, err := pw.Write(est.EncodeBody(part.der)); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	// The key travels once, over this TLS connection; no cache keeps it.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// channelBinding is tls-unique for TLS 1.2 (RFC 5929) and tls-exporter
// for TLS 1.3 (RFC 9266).
func channelBinding(cs *tls.ConnectionState) []byte {
	if cs.Version >= tls.VersionTLS13 {
		b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			return nil
		}
		return b
	}
	return cs.TLSUnique
}

func writeBase64(w http.ResponseWriter, typ string, der []byte) {
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(est.EncodeBody(der))
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// statuses is the one mapping from core errors to HTTP statuses.
var statuses = []struct {
	target error
	status int
}{
	{errMediaType, http.StatusUnsupportedMediaType},
	{est.ErrInvalid, http.StatusBadRequest},
	{issue.ErrInvalid, http.StatusBadRequest},
	{issue.ErrKeyCompromised, http.StatusBadRequest},
	{est.ErrUnauthenticated, http.StatusUnauthorized},
	{est.ErrRefused, http.StatusForbidden},
	{authz.ErrForbidden, http.StatusForbidden},
	{est.ErrNotFound, http.StatusNotFound},
	{est.ErrRateLimited, http.StatusTooManyRequests},
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
		return
	}
	if est.IsPolicyError(err) {
		writeText(w, http.StatusBadRequest, "the profile refuses this request: "+errtext.User(err))
		return
	}
	for _, m := range statuses {
		if errors.Is(err, m.target) {
			if m.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="EST", charset="UTF-8"`)
			}
			if m.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, est.RetryAfterSeconds(err))))
			}
			writeText(w, m.status, errtext.User(err))
			return
		}
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	h.d.Log.Error("est request failed", "op", op, "path", r.URL.Path, "err", err)
	writeText(w, http.StatusInternalServerError, "internal error; the server log has the details")
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
