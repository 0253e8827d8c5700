// Package acmeapi is the ACME server's HTTP edge: JWS verification, nonces,
// the directory, RFC 8555 resources and RFC 9773 renewal information, and
// problem documents. Mount New's handler at "/acme/"; every provisioner is
// served under /acme/NAME/. It holds no key and no state: acme.Service
// decides, this package only checks who is asking and renders the answer.
package acmeapi

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/netsource"
)

// Service is the part of acme.Service the edge calls. Every error a client
// caused is an *acme.Problem; anything else is answered serverInternal.
type Service interface {
	Provisioner(ctx context.Context, name string) (*acme.Provisioner, error)
	NewNonce(ctx context.Context) (string, error)
	UseNonce(ctx context.Context, nonce string) error
	NewAccount(ctx context.Context, prov *acme.Provisioner, req acme.NewAccountRequest) (*acme.Account, bool, error)
	EABKey(ctx context.Context, prov *acme.Provisioner, keyID string) ([]byte, error)
	AccountByKey(ctx context.Context, prov *acme.Provisioner, thumbprint string) (*acme.Account, error)
	Account(ctx context.Context, prov *acme.Provisioner, id string) (*acme.Account, error)
	UpdateAccount(ctx context.Context, prov *acme.Provisioner, acct *acme.Account, contact []string, deactivate bool) (*acme.Account, error)
	ChangeKey(ctx context.Context, prov *acme.Provisioner, acct *acme.Account, thumbprint string, jwk []byte) (*acme.Account, error)
	NewOrder(ctx context.Context, prov *acme.Provisioner, acct *acme.Account, req acme.OrderRequest) (*acme.Order, error)
	Order(ctx context.Context, acct *acme.Account, id string) (*acme.Order, error)
	OrderIDs(ctx context.Context, acct *acme.Account, after string, limit int) ([]string, error)
	Authorization(ctx context.Context, acct *acme.Account, id string) (*acme.Authorization, error)
	DeactivateAuthorization(ctx context.Context, acct *acme.Account, id string) (*acme.Authorization, error)
	RespondChallenge(ctx context.Context, acct *acme.Account, authzID, chID, clientIP string) (*acme.Challenge, *acme.Authorization, error)
	Finalize(ctx context.Context, prov *acme.Provisioner, acct *acme.Account, orderID string, csrDER []byte) (*acme.Order, error)
	CertificateChain(ctx context.Context, acct *acme.Account, serial string) ([]byte, error)
	Revoke(ctx context.Context, prov *acme.Provisioner, acct *acme.Account, certKey crypto.PublicKey, certDER []byte, reason *int) error
	RenewalInfo(ctx context.Context, certID string) (*acme.RenewalInfo, error)
}

var _ Service = (*acme.Service)(nil)

// Deps are the handler's dependencies; Log and Service are required.
type Deps struct {
	Log     *slog.Logger
	Service Service
	// BaseURL, when set (e.g. "https://ca.example.com"), is the
	// scheme+host every URL is built from and every JWS "url" header must
	// start with; empty means "https://" + r.Host.
	BaseURL string
	// MaxBody bounds request bodies; 0 means 64 KiB.
	MaxBody int64
	// StoreTimeout bounds each request, and so every store call it makes;
	// 0 means DefaultStoreTimeout. Finalize (issuance) gets
	// SlowRequestTimeout.
	StoreTimeout time.Duration
}

// Request deadlines: a stalled database answers 503 after them instead of
// hanging the client.
const (
	DefaultStoreTimeout = 5 * time.Second
	SlowRequestTimeout  = time.Minute
)

// DefaultMaxBody is the body limit when Deps.MaxBody is zero.
const DefaultMaxBody = 64 << 10

// Handler serves /acme/.
type Handler struct {
	d      Deps
	base   string
	routes []route

	// keys memoizes account keys parsed from their stored JSON, which
	// fixes the key: parsing is pure, and a key change stores new JSON.
	// The account itself (its status, its key) is read on every request.
	keyMu sync.Mutex
	keys  map[string]*jose.JSONWebKey
}

// maxCachedKeys bounds Handler.keys; a full memo starts over.
const maxCachedKeys = 4096

// accountKey returns the parsed account key stored as b.
func (h *Handler) accountKey(b []byte) (*jose.JSONWebKey, error) {
	h.keyMu.Lock()
	k, ok := h.keys[string(b)]
	h.keyMu.Unlock()
	if ok {
		return k, nil
	}
	k, err := parseAccountKey(b)
	if err != nil {
		return nil, err
	}
	h.keyMu.Lock()
	if len(h.keys) >= maxCachedKeys {
		clear(h.keys)
	}
	h.keys[string(b)] = k
	h.keyMu.Unlock()
	return k, nil
}

// keyPolicy says which JWS key a resource accepts (RFC 8555 §6.2).
type keyPolicy int

const (
	byKID    keyPolicy = iota // an account's kid
	byJWK                     // an embedded jwk (new-account)
	byEither                  // revoke-cert: an account, or the certificate's key
)

// route is one resource under /acme/NAME/. path's "*" matches one
// non-empty segment, handed to the handler in request.args.
type route struct {
	path   []string
	method string // GET (HEAD too) or POST
	keys   keyPolicy
	handle func(w http.ResponseWriter, rq *request) error
	// slow: the route issues, and gets SlowRequestTimeout.
	slow bool
}

// request is what a handler knows about the request it answers.
type request struct {
	r *http.Request
	// w is the server's own ResponseWriter, which http.MaxBytesReader
	// tells to close the connection after an oversized body.
	w    http.ResponseWriter
	id   string
	urls urls
	prov *acme.Provisioner
	args []string

	// Set for POST: the verified JWS, its key, the account (nil for a jwk
	// request) and the payload.
	jws     *jwsMessage
	key     *jose.JSONWebKey
	acct    *acme.Account
	payload []byte

	problem *acme.Problem // for the log line
}

func (rq *request) ctx() context.Context { return rq.r.Context() }

// New builds the handler, rejecting a bad BaseURL.
func New(d Deps) (*Handler, error) {
	if d.Log == nil || d.Service == nil {
		return nil, errors.New("acmeapi: Log and Service are required")
	}
	if d.MaxBody < 0 {
		return nil, errors.New("acmeapi: negative MaxBody")
	}
	if d.MaxBody == 0 {
		d.MaxBody = DefaultMaxBody
	}
	h := &Handler{d: d, keys: map[string]*jose.JSONWebKey{}}
	if d.BaseURL != "" {
		u, err := url.Parse(d.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("acmeapi: BaseURL %q must be a scheme and host, like https://ca.example.com", d.BaseURL)
		}
		h.base = u.Scheme + "://" + u.Host
	}
	get, post := http.MethodGet, http.MethodPost
	h.routes = []route{
		{path: []string{"directory"}, method: get, handle: h.directory},
		{path: []string{"new-nonce"}, method: get, handle: h.newNonce},
		{path: []string{"renewal-info", "*"}, method: get, handle: h.renewalInfo},
		{path: []string{"new-account"}, method: post, keys: byJWK, handle: h.newAccount},
		{path: []string{"new-order"}, method: post, handle: h.newOrder},
		{path: []string{"revoke-cert"}, method: post, keys: byEither, handle: h.revokeCert},
		{path: []string{"key-change"}, method: post, handle: h.keyChange},
		{path: []string{"account", "*"}, method: post, handle: h.account},
		{path: []string{"account", "*", "orders"}, method: post, handle: h.accountOrders},
		{path: []string{"order", "*"}, method: post, handle: h.order},
		{path: []string{"order", "*", "finalize"}, method: post, handle: h.finalize, slow: true},
		{path: []string{"authz", "*"}, method: post, handle: h.authz},
		{path: []string{"chall", "*", "*"}, method: post, handle: h.challenge},
		{path: []string{"cert", "*"}, method: post, handle: h.cert},
	}
	return h, nil
}

func (h *Handler) match(segs []string) (*route, []string) {
next:
	for i := range h.routes {
		rt := &h.routes[i]
		if len(rt.path) != len(segs) {
			continue
		}
		var args []string
		for j, p := range rt.path {
			switch {
			case segs[j] == "":
				continue next
			case p == "*":
				args = append(args, segs[j])
			case p != segs[j]:
				continue next
			}
		}
		return rt, args
	}
	return nil, nil
}

// ServeHTTP serves one ACME request and logs one line about it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	rq := &request{r: r, w: w, id: newRequestID()}
	sw.Header().Set("X-Request-Id", rq.id)
	if err := h.serve(sw, rq); err != nil {
		h.writeProblem(sw, rq, err)
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "remote", netsource.RemoteHost(r.RemoteAddr),
		"request_id", rq.id, "duration_ms", time.Since(start).Milliseconds()}
	if rq.acct != nil {
		attrs = append(attrs, "account", rq.acct.ID)
	}
	level := slog.LevelDebug
	if rq.problem != nil {
		attrs = append(attrs, "problem", string(rq.problem.Type), "detail", rq.problem.Detail)
		level = slog.LevelInfo
	}
	h.d.Log.Log(r.Context(), level, "acme request", attrs...)
}

func (h *Handler) serve(w http.ResponseWriter, rq *request) error {
	r := rq.r
	rest, ok := strings.CutPrefix(r.URL.Path, "/acme/")
	if !ok {
		return notFound("no ACME resource at %s", r.URL.Path)
	}
	segs := strings.Split(rest, "/")
	if segs[0] == "" {
		return notFound("no ACME resource at %s", r.URL.Path)
	}
	rt, args := h.match(segs[1:])
	timeout := h.d.StoreTimeout
	if timeout <= 0 {
		timeout = DefaultStoreTimeout
	}
	if rt != nil && rt.slow {
		timeout = max(timeout, SlowRequestTimeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rq.r = r.WithContext(ctx)
	r = rq.r
	rq.urls = urls{base: h.baseFor(r), name: segs[0]}
	prov, err := h.d.Service.Provisioner(rq.ctx(), segs[0])
	if err != nil {
		if acme.AsProblem(err) == nil && errors.Is(err, acme.ErrNotFound) {
			return notFound("no ACME provisioner %q", segs[0])
		}
		return err
	}
	rq.prov = prov
	w.Header().Set("Link", link(rq.urls.directory(), "index"))
	if rt == nil {
		return notFound("no ACME resource at %s", r.URL.Path)
	}
	rq.args = args
	switch {
	case rt.method == http.MethodGet && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return rt.handle(w, rq)
	case rt.method == http.MethodGet:
		return methodNotAllowed("GET, HEAD", r.Method, r.URL.Path)
	case r.Method != http.MethodPost:
		return methodNotAllowed("POST", r.Method, r.URL.Path)
	}
	nonce, err := h.d.Service.NewNonce(rq.ctx())
	if err != nil {
		return err
	}
	w.Header().Set("Replay-Nonce", nonce)
	if err := h.authenticate(w, rq, rt.keys); err != nil {
		return err
	}
	return rt.handle(w, rq)
}

// authenticate reads and verifies the JWS of a POST (RFC 8555 §6.2-6.5):
// media type, size, shape, url, the key and the signature, then the nonce.
func (h *Handler) authenticate(w http.ResponseWriter, rq *request, keys keyPolicy) error {
	r := rq.r
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/jose+json" {
		return withStatus(http.StatusUnsupportedMediaType, acme.ErrMalformed, "Content-Type must be application/jose+json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(rq.w, r.Body, h.d.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return withStatus(http.StatusBadRequest, acme.ErrMalformed, "request body could not be read")
	}
	m, err := parseJWS(body)
	if err != nil {
		return err
	}
	want := rq.urls.base + r.URL.Path
	if r.URL.RawQuery != "" {
		want += "?" + r.URL.RawQuery
	}
	if m.URL != want {
		return acme.NewProblem(acme.ErrUnauthorized, "url header %q does not match request URL %q", m.URL, want)
	}
	switch {
	case keys == byJWK && m.JWK == nil:
		return malformed("this resource needs a JWS signed with a jwk header, not a kid")
	case keys == byKID && m.JWK != nil:
		return malformed("this resource needs a JWS with the account URL as kid, not a jwk")
	}
	key := m.JWK
	if key == nil {
		id, ok := strings.CutPrefix(m.KeyID, rq.urls.accountPrefix())
		if !ok || id == "" || strings.Contains(id, "/") {
			return acme.NewProblem(acme.ErrAccountDoesNotExist, "kid %q is not an account URL of this directory", m.KeyID)
		}
		acct, err := h.d.Service.Account(rq.ctx(), rq.prov, id)
		if err != nil {
			if acme.AsProblem(err) == nil && errors.Is(err, acme.ErrNotFound) {
				return acme.NewProblem(acme.ErrAccountDoesNotExist, "no account %q", m.KeyID)
			}
			return err
		}
		if key, err = h.accountKey(acct.KeyJWK); err != nil {
			return fmt.Errorf("acmeapi: account %s: %w", acct.ID, err)
		}
		rq.acct = acct
	}
	payload, err := m.verify(key)
	if err != nil {
		rq.acct = nil
		return err
	}
	// The nonce is spent only by a request whose signature verifies, so a
	// forged request can neither burn a client's nonce nor cost a write.
	if err := h.d.Service.UseNonce(rq.ctx(), m.Nonce); err != nil {
		rq.acct = nil
		return err
	}
	rq.jws, rq.key, rq.payload = m, key, payload
	return nil
}

func (h *Handler) baseFor(r *http.Request) string {
	if h.base != "" {
		return h.base
	}
	return "https://" + r.Host
}

func link(u, rel string) string { return "<" + u + ">;rel=\"" + rel + "\"" }

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusWriter records the status for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
