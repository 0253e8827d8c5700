package acmeapi

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/acme"
)

// The fake below stands in for acme.Service only to drive the HTTP edge:
// routing, JWS checks, headers and rendering. The service's own behaviour
// is tested against the real store in internal/acme and, end to end, with
// real ACME clients in internal/app.

var errInternalForTest = errors.New("disk on fire")

type revokeCall struct {
	acct    *acme.Account
	certKey crypto.PublicKey
	der     []byte
	reason  *int
}

type fakeService struct {
	mu       sync.Mutex
	prov     acme.Provisioner
	seq      int
	nonces   map[string]bool // issued nonce -> used
	accounts map[string]*acme.Account
	eabKeys  map[string][]byte
	orders   map[string]*acme.Order
	authzs   map[string]*acme.Authorization
	lastReq  acme.NewAccountRequest
	revokes  []revokeCall
	csr      []byte
	// newOrderErr, when set, is NewOrder's answer.
	newOrderErr error
}

func newFakeService() *fakeService {
	return &fakeService{
		prov:     acme.Provisioner{ID: "p1", Name: "prov", Website: "https://www.example"},
		nonces:   map[string]bool{},
		accounts: map[string]*acme.Account{},
		eabKeys:  map[string][]byte{},
		orders:   map[string]*acme.Order{},
		authzs:   map[string]*acme.Authorization{},
	}
}

func (f *fakeService) next(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s%d", prefix, f.seq)
}

func (f *fakeService) nonceIssued(n string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.nonces[n]
	return ok
}

func (f *fakeService) Provisioner(_ context.Context, name string) (*acme.Provisioner, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != f.prov.Name {
		return nil, fmt.Errorf("acme: provisioner %q: %w", name, acme.ErrNotFound)
	}
	p := f.prov
	return &p, nil
}

func (f *fakeService) NewNonce(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.next("nonce")
	f.nonces[n] = false
	return n, nil
}

func (f *fakeService) UseNonce(_ context.Context, n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if used, ok := f.nonces[n]; !ok || used {
		return acme.NewProblem(acme.ErrBadNonce, "nonce %q is unknown or used", n)
	}
	f.nonces[n] = true
	return nil
}

func (f *fakeService) byThumbprint(tp string) *acme.Account {
	for _, a := range f.accounts {
		if a.KeyThumbprint == tp {
			return a
		}
	}
	return nil
}

func (f *fakeService) NewAccount(_ context.Context, prov *acme.Provisioner, req acme.NewAccountRequest) (*acme.Account, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastReq = req
	if a := f.byThumbprint(req.Thumbprint); a != nil {
		return a, false, nil
	}
	if req.OnlyReturnExisting {
		return nil, false, acme.NewProblem(acme.ErrAccountDoesNotExist, "no account")
	}
	if prov.RequireEAB && req.EABKeyID == "" {
		return nil, false, acme.NewProblem(acme.ErrExternalAccountRequired, "EAB required")
	}
	a := &acme.Account{ID: f.next("a"), ProvisionerID: prov.ID, KeyThumbprint: req.Thumbprint, KeyJWK: req.JWK,
		Contact: req.Contact, Status: acme.StatusValid, TermsAgreed: req.TermsAgreed, EABKeyID: req.EABKeyID}
	f.accounts[a.ID] = a
	return a, true, nil
}

func (f *fakeService) EABKey(_ context.Context, _ *acme.Provisioner, keyID string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.eabKeys[keyID]; ok {
		return k, nil
	}
	return nil, acme.NewProblem(acme.ErrUnauthorized, "unknown EAB key %q", keyID)
}

func (f *fakeService) AccountByKey(_ context.Context, _ *acme.Provisioner, tp string) (*acme.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.byThumbprint(tp); a != nil {
		return a, nil
	}
	return nil, acme.NewProblem(acme.ErrAccountDoesNotExist, "no account")
}

func (f *fakeService) Account(_ context.Context, _ *acme.Provisioner, id string) (*acme.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return nil, acme.NewProblem(acme.ErrAccountDoesNotExist, "account %q does not exist", id)
	}
	if a.Status != acme.StatusValid {
		return nil, acme.NewProblem(acme.ErrUnauthorized, "account is %s", a.Status)
	}
	c := *a
	return &c, nil
}

func (f *fakeService) UpdateAccount(_ context.Context, _ *acme.Provisioner, acct *acme.Account, contact []string, deactivate bool) (*acme.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.accounts[acct.ID]
	if contact != nil {
		a.Contact = contact
	}
	if deactivate {
		a.Status = acme.StatusDeactivated
	}
	c := *a
	return &c, nil
}

func (f *fakeService) ChangeKey(_ context.Context, _ *acme.Provisioner, acct *acme.Account, tp string, jwk []byte) (*acme.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if other := f.byThumbprint(tp); other != nil {
		return nil, &acme.Problem{Type: acme.ErrMalformed, Detail: "key in use", Location: "account/" + other.ID, HTTPStatus: 409}
	}
	a := f.accounts[acct.ID]
	a.KeyThumbprint, a.KeyJWK = tp, jwk
	c := *a
	return &c, nil
}

func (f *fakeService) NewOrder(_ context.Context, prov *acme.Provisioner, acct *acme.Account, req acme.OrderRequest) (*acme.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.newOrderErr != nil {
		return nil, f.newOrderErr
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	z := &acme.Authorization{ID: f.next("z"), AccountID: acct.ID, Identifier: req.Identifiers[0], Status: acme.StatusPending, Expires: exp}
	z.Challenges = []acme.Challenge{{ID: "c1", AuthzID: z.ID, Type: acme.ChallengeHTTP01, Token: "tok", Status: acme.StatusPending}}
	f.authzs[z.ID] = z
	o := &acme.Order{ID: f.next("o"), AccountID: acct.ID, ProvisionerID: prov.ID, Status: acme.StatusPending,
		Identifiers: req.Identifiers, Expires: exp, AuthzIDs: []string{z.ID}, Replaces: req.Replaces}
	f.orders[o.ID] = o
	return o, nil
}

func notFoundProblem(kind, id string) error {
	return &acme.Problem{Type: acme.ErrMalformed, Detail: "no " + kind + " " + id, HTTPStatus: 404}
}

func (f *fakeService) Order(_ context.Context, acct *acme.Account, id string) (*acme.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	if !ok || o.AccountID != acct.ID {
		return nil, notFoundProblem("order", id)
	}
	return o, nil
}

func (f *fakeService) OrderIDs(_ context.Context, acct *acme.Account, after string, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, o := range f.orders {
		if o.AccountID == acct.ID && id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

func (f *fakeService) Authorization(_ context.Context, acct *acme.Account, id string) (*acme.Authorization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z, ok := f.authzs[id]
	if !ok || z.AccountID != acct.ID {
		return nil, notFoundProblem("authorization", id)
	}
	return z, nil
}

func (f *fakeService) DeactivateAuthorization(ctx context.Context, acct *acme.Account, id string) (*acme.Authorization, error) {
	z, err := f.Authorization(ctx, acct, id)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	z.Status = acme.StatusDeactivated
	return z, nil
}

func (f *fakeService) RespondChallenge(ctx context.Context, acct *acme.Account, authzID, chID, clientIP string) (*acme.Challenge, *acme.Authorization, error) {
	z, err := f.Authorization(ctx, acct, authzID)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range z.Challenges {
		if z.Challenges[i].ID == chID {
			z.Challenges[i].Status = acme.StatusProcessing
			return &z.Challenges[i], z, nil
		}
	}
	return nil, nil, notFoundProblem("challenge", chID)
}

func (f *fakeService) Finalize(ctx context.Context, _ *acme.Provisioner, acct *acme.Account, orderID string, csr []byte) (*acme.Order, error) {
	o, err := f.Order(ctx, acct, orderID)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.csr = csr
	o.Status = acme.StatusProcessing
	return o, nil
}

const testChain = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"

func (f *fakeService) CertificateChain(_ context.Context, _ *acme.Account, serial string) ([]byte, error) {
	if serial != "0a" {
		return nil, notFoundProblem("certificate", serial)
	}
	return []byte(testChain), nil
}

func (f *fakeService) Revoke(_ context.Context, _ *acme.Provisioner, acct *acme.Account, certKey crypto.PublicKey, der []byte, reason *int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, revokeCall{acct, certKey, der, reason})
	return nil
}

func (f *fakeService) RenewalInfo(_ context.Context, certID string) (*acme.RenewalInfo, error) {
	switch certID {
	case "aki.serial":
		return &acme.RenewalInfo{Start: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC),
			RetryAfter: 90 * time.Minute}, nil
	case "broken":
		return nil, errInternalForTest
	}
	return nil, fmt.Errorf("acme: certificate %s: %w", certID, acme.ErrNotFound)
}

// logBuffer collects the handler's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

func newTestHandler(t *testing.T) (*Handler, *fakeService, *logBuffer) {
	t.Helper()
	fs := newFakeService()
	logs := &logBuffer{}
	h, err := New(Deps{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Service: fs, BaseURL: "https://ca.example/", MaxBody: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return h, fs, logs
}

type testClient struct {
	t   *testing.T
	h   http.Handler
	fs  *fakeService
	alg string
	key crypto.Signer
	kid string
}

func newTestClient(t *testing.T, alg string) *testClient {
	t.Helper()
	h, fs, _ := newTestHandler(t)
	return &testClient{t: t, h: h, fs: fs, alg: alg, key: testKeys(t)[alg]}
}

func (c *testClient) do(method, path string, body []byte, contentType string) *httptest.ResponseRecorder {
	c.t.Helper()
	r := httptest.NewRequest(method, "https://ca.example"+path, bytes.NewReader(body))
	r.RemoteAddr = "192.0.2.7:4711"
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	return rec
}

// signed builds the body of a POST to path; hdr overrides header members.
func (c *testClient) signed(path string, payload []byte, hdr map[string]any) []byte {
	c.t.Helper()
	nonce, _ := c.fs.NewNonce(context.Background())
	h := map[string]any{"nonce": nonce, "url": "https://ca.example" + path}
	if c.kid != "" {
		h["kid"] = c.kid
	} else {
		h["jwk"] = jwkOf(c.t, c.key)
	}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return flattened(c.t, c.alg, c.key, h, payload)
}

func (c *testClient) post(path string, payload []byte) *httptest.ResponseRecorder {
	c.t.Helper()
	return c.do("POST", path, c.signed(path, payload, nil), "application/jose+json")
}

// register creates the client's account and switches it to kid.
func (c *testClient) register() string {
	c.t.Helper()
	rec := c.post("/acme/prov/new-account", []byte(`{"termsOfServiceAgreed":true,"contact":["mailto:a@example.com"]}`))
	if rec.Code != http.StatusCreated {
		c.t.Fatalf("new-account: %d %s", rec.Code, rec.Body)
	}
	c.kid = rec.Header().Get("Location")
	return strings.TrimPrefix(c.kid, "https://ca.example/acme/prov/account/")
}

func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, typ acme.ErrorType) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["type"] != acme.URNPrefix+string(typ) {
		t.Errorf("type = %v, want %s (detail %v)", doc["type"], typ, doc["detail"])
	}
	if doc["status"] != float64(status) {
		t.Errorf("status member = %v", doc["status"])
	}
	if rec.Header().Get("Replay-Nonce") == "" {
		t.Errorf("problem without Replay-Nonce")
	}
	return doc
}

const indexLink = `<https://ca.example/acme/prov/directory>;rel="index"`

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, d := range []Deps{
		{Service: newFakeService()},
		{Log: log},
		{Log: log, Service: newFakeService(), BaseURL: "ca.example"},
		{Log: log, Service: newFakeService(), BaseURL: "https://ca.example/acme"},
		{Log: log, Service: newFakeService(), BaseURL: "ftp://ca.example"},
		{Log: log, Service: newFakeService(), MaxBody: -1},
	} {
		if _, err := New(d); err == nil {
			t.Errorf("New(%+v) accepted", d)
		}
	}
}

func TestDirectoryAndNonce(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	rec := c.do("GET", "/acme/prov/directory", nil, "")
	if rec.Code != 200 || rec.Header().Get("Link") != indexLink {
		t.Fatalf("directory: %d, Link %q", rec.Code, rec.Header().Get("Link"))
	}
	assertJSONBytes(t, rec.Body.Bytes(), `{"newNonce":"https://ca.example/acme/prov/new-nonce","newAccount":"https://ca.example/acme/prov/new-account",
		"newOrder":"https://ca.example/acme/prov/new-order","revokeCert":"https://ca.example/acme/prov/revoke-cert",
		"keyChange":"https://ca.example/acme/prov/key-change","renewalInfo":"https://ca.example/acme/prov/renewal-info",
		"meta":{"website":"https://www.example","externalAccountRequired":false}}`)

	for method, status := range map[string]int{"HEAD": 200, "GET": 204} {
		rec := c.do(method, "/acme/prov/new-nonce", nil, "")
		if rec.Code != status {
			t.Errorf("%s new-nonce = %d, want %d", method, rec.Code, status)
		}
		if n := rec.Header().Get("Replay-Nonce"); !c.fs.nonceIssued(n) {
			t.Errorf("%s new-nonce: Replay-Nonce %q", method, n)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Link") != indexLink {
			t.Errorf("%s new-nonce headers: %v", method, rec.Header())
		}
	}
}

func TestBaseURLFromHost(t *testing.T) {
	t.Parallel()
	h, err := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Service: newFakeService()})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://acme.internal:8443/acme/prov/directory", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if want := `<https://acme.internal:8443/acme/prov/directory>;rel="index"`; rec.Header().Get("Link") != want {
		t.Errorf("Link = %q, want %q", rec.Header().Get("Link"), want)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/acme/nope/directory", 404, ""},
		{"GET", "/acme/", 404, ""},
		{"GET", "/acme/prov/", 404, ""},
		{"GET", "/acme/prov/nothing", 404, ""},
		{"GET", "/acme/prov/order/", 404, ""},
		{"POST", "/acme/prov/order/o1/", 404, ""},
		{"GET", "/acme/prov/renewal-info", 404, ""},
		{"GET", "/acme/prov/new-order", 405, "POST"},
		{"GET", "/acme/prov/order/o1", 405, "POST"},
		{"HEAD", "/acme/prov/cert/0a", 405, "POST"},
		{"PUT", "/acme/prov/new-account", 405, "POST"},
		{"POST", "/acme/prov/directory", 405, "GET, HEAD"},
		{"POST", "/acme/prov/new-nonce", 405, "GET, HEAD"},
		{"POST", "/acme/prov/renewal-info/x", 405, "GET, HEAD"},
	}
	for _, tc := range tests {
		rec := c.do(tc.method, tc.path, nil, "")
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			wantProblem(t, rec, tc.status, acme.ErrMalformed)
			if rec.Header().Get("Allow") != tc.allow {
				t.Errorf("Allow = %q, want %q", rec.Header().Get("Allow"), tc.allow)
			}
		})
	}
}

func TestRenewalInfo(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	rec := c.do("GET", "/acme/prov/renewal-info/aki.serial", nil, "")
	if rec.Code != 200 || rec.Header().Get("Retry-After") != "5400" || rec.Header().Get("Link") != indexLink {
		t.Fatalf("renewal-info: %d %v", rec.Code, rec.Header())
	}
	assertJSONBytes(t, rec.Body.Bytes(), `{"suggestedWindow":{"start":"2030-01-01T00:00:00Z","end":"2030-01-02T00:00:00Z"}}`)
	wantProblem(t, c.do("GET", "/acme/prov/renewal-info/unknown", nil, ""), 404, acme.ErrMalformed)
	wantProblem(t, c.do("GET", "/acme/prov/renewal-info/broken", nil, ""), 500, acme.ErrServerInternal)
}

func TestPOSTChecks(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	id := c.register()
	const path = "/acme/prov/order/o9"
	other := testKeys(t)["ES256b"]
	tests := []struct {
		name   string
		body   func() []byte
		ctype  string
		path   string
		status int
		typ    acme.ErrorType
	}{
		{name: "content type", body: func() []byte { return c.signed(path, nil, nil) }, ctype: "application/json", status: 415, typ: acme.ErrMalformed},
		{name: "too large", body: func() []byte { return c.signed(path, bytes.Repeat([]byte(" "), 5000), nil) }, status: 413, typ: acme.ErrMalformed},
		{name: "not a JWS", body: func() []byte { return []byte("{}") }, status: 400, typ: acme.ErrMalformed},
		{name: "used nonce", body: func() []byte { return c.signed(path, nil, map[string]any{"nonce": "nonce1"}) }, status: 400, typ: acme.ErrBadNonce},
		{name: "unknown nonce", body: func() []byte { return c.signed(path, nil, map[string]any{"nonce": "forged"}) }, status: 400, typ: acme.ErrBadNonce},
		{name: "url of another resource", body: func() []byte {
			return c.signed(path, nil, map[string]any{"url": "https://ca.example/acme/prov/order/o8"})
		}, status: 403, typ: acme.ErrUnauthorized},
		{name: "url of another host", body: func() []byte {
			return c.signed(path, nil, map[string]any{"url": "https://evil.example" + path})
		}, status: 403, typ: acme.ErrUnauthorized},
		{name: "jwk where kid is needed", body: func() []byte {
			return c.signed(path, nil, map[string]any{"kid": nil, "jwk": jwkOf(t, c.key)})
		}, status: 400, typ: acme.ErrMalformed},
		{name: "kid where jwk is needed", path: "/acme/prov/new-account", body: func() []byte {
			return c.signed("/acme/prov/new-account", []byte("{}"), nil)
		}, status: 400, typ: acme.ErrMalformed},
		{name: "kid of another directory", body: func() []byte {
			return c.signed(path, nil, map[string]any{"kid": "https://ca.example/acme/other/account/" + id})
		}, status: 400, typ: acme.ErrAccountDoesNotExist},
		{name: "unknown account", body: func() []byte {
			return c.signed(path, nil, map[string]any{"kid": "https://ca.example/acme/prov/account/nobody"})
		}, status: 400, typ: acme.ErrAccountDoesNotExist},
		{name: "signed by another key", body: func() []byte {
			nonce, _ := c.fs.NewNonce(context.Background())
			return flattened(t, "ES256", other, map[string]any{"nonce": nonce, "url": "https://ca.example" + path, "kid": c.kid}, nil)
		}, status: 400, typ: acme.ErrMalformed},
		{name: "weak jwk", path: "/acme/prov/new-account", body: func() []byte {
			nonce, _ := c.fs.NewNonce(context.Background())
			k := testKeys(t)["RS1024"]
			return flattened(t, "RS256", k, map[string]any{"nonce": nonce, "url": "https://ca.example/acme/prov/new-account", "jwk": jwkOf(t, k)}, []byte("{}"))
		}, status: 400, typ: acme.ErrBadPublicKey},
		{name: "HS256", body: func() []byte {
			nonce, _ := c.fs.NewNonce(context.Background())
			return flattened(t, "HS256", make([]byte, 32), map[string]any{"nonce": nonce, "url": "https://ca.example" + path, "kid": c.kid}, nil)
		}, status: 400, typ: acme.ErrBadSignatureAlgorithm},
		{name: "payload on POST-as-GET", body: func() []byte { return c.signed(path, []byte("{}"), nil) }, status: 400, typ: acme.ErrMalformed},
	}
	for _, tc := range tests {
		p, ct := tc.path, tc.ctype
		if p == "" {
			p = path
		}
		if ct == "" {
			ct = "application/jose+json"
		}
		rec := c.do("POST", p, tc.body(), ct)
		t.Run(tc.name, func(t *testing.T) {
			doc := wantProblem(t, rec, tc.status, tc.typ)
			if rec.Header().Get("Link") != indexLink {
				t.Errorf("Link = %q", rec.Header().Get("Link"))
			}
			if tc.typ == acme.ErrBadSignatureAlgorithm && doc["algorithms"] == nil {
				t.Errorf("badSignatureAlgorithm without algorithms: %v", doc)
			}
		})
	}
	// The nonce of a request that failed after the nonce check is spent.
	body := c.signed(path, nil, map[string]any{"nonce": "nonce-replay"})
	c.fs.nonces["nonce-replay"] = false
	wantProblem(t, c.do("POST", path, body, "application/jose+json"), 404, acme.ErrMalformed)
	wantProblem(t, c.do("POST", path, body, "application/jose+json"), 400, acme.ErrBadNonce)

	// A request whose signature does not verify leaves its nonce unspent.
	c.fs.nonces["nonce-forged"] = false
	forged := flattened(t, "ES256", other, map[string]any{"nonce": "nonce-forged", "url": "https://ca.example" + path, "kid": c.kid}, nil)
	wantProblem(t, c.do("POST", path, forged, "application/jose+json"), 400, acme.ErrMalformed)
	if c.fs.nonces["nonce-forged"] {
		t.Error("a request with a bad signature spent its nonce")
	}
}

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "EdDSA")
	rec := c.post("/acme/prov/new-account", []byte(`{"onlyReturnExisting":true}`))
	wantProblem(t, rec, 400, acme.ErrAccountDoesNotExist)

	rec = c.post("/acme/prov/new-account", []byte(`{"termsOfServiceAgreed":true,"contact":["mailto:a@example.com"],"unknownField":1}`))
	if rec.Code != 201 || rec.Header().Get("Replay-Nonce") == "" || rec.Header().Get("Link") != indexLink {
		t.Fatalf("new-account: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	loc := rec.Header().Get("Location")
	id := strings.TrimPrefix(loc, "https://ca.example/acme/prov/account/")
	assertJSONBytes(t, rec.Body.Bytes(), `{"status":"valid","contact":["mailto:a@example.com"],"termsOfServiceAgreed":true,"orders":"`+loc+`/orders"}`)
	if req := c.fs.lastReq; req.Thumbprint != tpOf(t, c.key) || req.ClientIP != "192.0.2.7" || !req.TermsAgreed {
		t.Errorf("NewAccountRequest = %+v", req)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(c.fs.lastReq.JWK); err != nil || !jwk.IsPublic() {
		t.Errorf("NewAccountRequest.JWK %s: %v", c.fs.lastReq.JWK, err)
	}

	rec = c.post("/acme/prov/new-account", []byte(`{}`))
	if rec.Code != 200 || rec.Header().Get("Location") != loc {
		t.Fatalf("existing account: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	wantProblem(t, c.post("/acme/prov/new-account", []byte(`{"contact":"mailto:a@example.com"}`)), 400, acme.ErrMalformed)
	wantProblem(t, c.post("/acme/prov/new-account", nil), 400, acme.ErrMalformed)

	c.kid = loc
	for _, payload := range []string{"", "{}"} {
		rec = c.post("/acme/prov/account/"+id, []byte(payload))
		if rec.Code != 200 {
			t.Fatalf("read account with %q: %d %s", payload, rec.Code, rec.Body)
		}
	}
	rec = c.post("/acme/prov/account/"+id, []byte(`{"contact":[]}`))
	assertJSONBytes(t, rec.Body.Bytes(), `{"status":"valid","termsOfServiceAgreed":true,"orders":"`+loc+`/orders"}`)
	wantProblem(t, c.post("/acme/prov/account/"+id, []byte(`{"status":"valid"}`)), 400, acme.ErrMalformed)
	wantProblem(t, c.post("/acme/prov/account/someone-else", nil), 403, acme.ErrUnauthorized)

	rec = c.post("/acme/prov/account/"+id, []byte(`{"status":"deactivated"}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"deactivated"`) {
		t.Fatalf("deactivate: %d %s", rec.Code, rec.Body)
	}
	wantProblem(t, c.post("/acme/prov/account/"+id, nil), 403, acme.ErrUnauthorized)
}

func TestExternalAccountBinding(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES384")
	c.fs.prov.RequireEAB = true
	hmacKey := bytes.Repeat([]byte{7}, 32)
	c.fs.eabKeys["kid-1"] = hmacKey
	const url = "https://ca.example/acme/prov/new-account"
	payload := func(eab []byte) []byte {
		return []byte(`{"termsOfServiceAgreed":true,"externalAccountBinding":` + string(eab) + `}`)
	}
	eab := func(kid string, key []byte) []byte {
		return flattened(t, "HS256", key, map[string]any{"kid": kid, "url": url}, jwkOf(t, c.key))
	}
	wantProblem(t, c.post("/acme/prov/new-account", []byte(`{"termsOfServiceAgreed":true}`)), 401, acme.ErrExternalAccountRequired)
	wantProblem(t, c.post("/acme/prov/new-account", payload(eab("kid-2", hmacKey))), 403, acme.ErrUnauthorized)
	wantProblem(t, c.post("/acme/prov/new-account", payload(eab("kid-1", bytes.Repeat([]byte{8}, 32)))), 403, acme.ErrUnauthorized)
	wantProblem(t, c.post("/acme/prov/new-account", payload([]byte(`"x"`))), 400, acme.ErrMalformed)

	rec := c.post("/acme/prov/new-account", payload(eab("kid-1", hmacKey)))
	if rec.Code != 201 || c.fs.lastReq.EABKeyID != "kid-1" {
		t.Fatalf("new-account with EAB: %d %s; EABKeyID %q", rec.Code, rec.Body, c.fs.lastReq.EABKeyID)
	}
	// A client that sends the binding again gets its account back, though
	// the key is bound by now.
	delete(c.fs.eabKeys, "kid-1")
	rec = c.post("/acme/prov/new-account", payload(eab("kid-1", hmacKey)))
	if rec.Code != 200 || c.fs.lastReq.EABKeyID != "" {
		t.Fatalf("repeat new-account with EAB: %d %s", rec.Code, rec.Body)
	}
}

func TestOrderFlow(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "RS256")
	acctID := c.register()

	wantProblem(t, c.post("/acme/prov/new-order", []byte(`{"identifiers":"a.example"}`)), 400, acme.ErrMalformed)
	rec := c.post("/acme/prov/new-order", []byte(`{"identifiers":[{"type":"dns","value":"a.example"}],"replaces":"aki.serial"}`))
	if rec.Code != 201 {
		t.Fatalf("new-order: %d %s", rec.Code, rec.Body)
	}
	orderURL := rec.Header().Get("Location")
	var order orderObj
	if err := json.Unmarshal(rec.Body.Bytes(), &order); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(orderURL, "https://ca.example/acme/prov/order/") || order.Finalize != orderURL+"/finalize" ||
		order.Replaces != "aki.serial" || len(order.Authorizations) != 1 || order.Expires != "2030-01-01T00:00:00Z" {
		t.Fatalf("order %s: %+v", orderURL, order)
	}
	orderPath := strings.TrimPrefix(orderURL, "https://ca.example")
	authzPath := strings.TrimPrefix(order.Authorizations[0], "https://ca.example")

	rec = c.post(authzPath, nil)
	if rec.Code != 200 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("authz: %d %v", rec.Code, rec.Header())
	}
	var authz authzObj
	_ = json.Unmarshal(rec.Body.Bytes(), &authz)
	chPath := strings.TrimPrefix(authz.Challenges[0].URL, "https://ca.example")

	// POST-as-GET reads the challenge; "{}" starts validation.
	rec = c.post(chPath, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"pending"`) {
		t.Fatalf("read challenge: %d %s", rec.Code, rec.Body)
	}
	rec = c.post(chPath, []byte("{}"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"processing"`) || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("respond challenge: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if links := rec.Header().Values("Link"); !slices.Contains(links, `<https://ca.example`+authzPath+`>;rel="up"`) || !slices.Contains(links, indexLink) {
		t.Errorf("challenge links: %q", links)
	}
	wantProblem(t, c.post(chPath, []byte("[]")), 400, acme.ErrMalformed)
	wantProblem(t, c.post("/acme/prov/chall/zz/c1", nil), 404, acme.ErrMalformed)

	wantProblem(t, c.post(orderPath+"/finalize", []byte(`{"csr":"!!"}`)), 400, acme.ErrMalformed)
	rec = c.post(orderPath+"/finalize", []byte(`{"csr":"MAA="}`))
	if rec.Code != 200 || rec.Header().Get("Location") != orderURL || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("finalize: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if !bytes.Equal(c.fs.csr, []byte{0x30, 0}) {
		t.Errorf("CSR passed on = %x", c.fs.csr)
	}
	rec = c.post(orderPath, nil)
	if rec.Code != 200 || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"processing"`) {
		t.Fatalf("order: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}

	rec = c.post("/acme/prov/account/"+acctID+"/orders", nil)
	assertJSONBytes(t, rec.Body.Bytes(), `{"orders":["`+orderURL+`"]}`)
	wantProblem(t, c.post("/acme/prov/account/"+acctID+"/orders", []byte("{}")), 400, acme.ErrMalformed)

	rec = c.post("/acme/prov/cert/0a", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/pem-certificate-chain" || rec.Body.String() != testChain {
		t.Fatalf("cert: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if rec.Header().Get("Replay-Nonce") == "" || rec.Header().Get("Link") != indexLink {
		t.Errorf("cert headers: %v", rec.Header())
	}
	wantProblem(t, c.post("/acme/prov/cert/0b", nil), 404, acme.ErrMalformed)

	rec = c.post(authzPath, []byte(`{"status":"deactivated"}`))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"deactivated"`) || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("deactivate authz: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	wantProblem(t, c.post(authzPath, []byte(`{"status":"valid"}`)), 400, acme.ErrMalformed)

	limited := acme.NewProblem(acme.ErrRateLimited, "too many orders")
	limited.RetryAfterSeconds = 60
	c.fs.newOrderErr = limited
	rec = c.post("/acme/prov/new-order", []byte(`{"identifiers":[{"type":"dns","value":"a.example"}]}`))
	wantProblem(t, rec, 429, acme.ErrRateLimited)
	if rec.Header().Get("Retry-After") != "60" {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	c.fs.newOrderErr = errInternalForTest
	rec = c.post("/acme/prov/new-order", []byte(`{"identifiers":[{"type":"dns","value":"a.example"}]}`))
	if doc := wantProblem(t, rec, 500, acme.ErrServerInternal); doc["detail"] != "internal error" {
		t.Errorf("internal detail leaked: %v", doc["detail"])
	}
}

func TestOrdersPagination(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	acctID := c.register()
	for i := range ordersPageSize + 3 {
		id := fmt.Sprintf("o%04d", i)
		c.fs.orders[id] = &acme.Order{ID: id, AccountID: acctID}
	}
	path := "/acme/prov/account/" + acctID + "/orders"
	rec := c.post(path, nil)
	var page ordersObj
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	next := `<https://ca.example` + path + `?cursor=o0099>;rel="next"`
	if len(page.Orders) != ordersPageSize || !slices.Contains(rec.Header().Values("Link"), next) {
		t.Fatalf("first page: %d orders, links %q", len(page.Orders), rec.Header().Values("Link"))
	}
	rec = c.post(path+"?cursor=o0099", nil)
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if rec.Code != 200 || len(page.Orders) != 3 || len(rec.Header().Values("Link")) != 1 {
		t.Fatalf("second page: %d %d orders, links %q", rec.Code, len(page.Orders), rec.Header().Values("Link"))
	}
}

func TestKeyChange(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	acctID := c.register()
	ks := testKeys(t)
	const path = "/acme/prov/key-change"
	inner := func(newKey crypto.Signer, alg string) []byte {
		payload, _ := json.Marshal(map[string]any{"account": c.kid, "oldKey": jwkOf(t, c.key)})
		return flattened(t, alg, newKey, map[string]any{"url": "https://ca.example" + path, "jwk": jwkOf(t, newKey)}, payload)
	}

	// Another account already holds ES384's key.
	other := &testClient{t: t, h: c.h, fs: c.fs, alg: "ES384", key: ks["ES384"]}
	otherID := other.register()
	rec := c.post(path, inner(ks["ES384"], "ES384"))
	wantProblem(t, rec, 409, acme.ErrMalformed)
	if want := "https://ca.example/acme/prov/account/" + otherID; rec.Header().Get("Location") != want {
		t.Errorf("conflict Location = %q, want %q", rec.Header().Get("Location"), want)
	}

	wantProblem(t, c.post(path, []byte(`{}`)), 400, acme.ErrMalformed)
	rec = c.post(path, inner(ks["EdDSA"], "EdDSA"))
	if rec.Code != 200 || c.fs.accounts[acctID].KeyThumbprint != tpOf(t, ks["EdDSA"]) {
		t.Fatalf("key-change: %d %s", rec.Code, rec.Body)
	}
	// The old key no longer signs for the account; the new one does.
	wantProblem(t, c.post("/acme/prov/account/"+acctID, nil), 400, acme.ErrMalformed)
	c.alg, c.key = "EdDSA", ks["EdDSA"]
	if rec := c.post("/acme/prov/account/"+acctID, nil); rec.Code != 200 {
		t.Fatalf("new key: %d %s", rec.Code, rec.Body)
	}
}

func TestRevokeCert(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, "ES256")
	acctID := c.register()
	rec := c.post("/acme/prov/revoke-cert", []byte(`{"certificate":"MAA","reason":4}`))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Replay-Nonce") == "" {
		t.Fatalf("revoke by account: %d %s", rec.Code, rec.Body)
	}
	// Signed by the certificate's key.
	certKey := testKeys(t)["ES256b"]
	byKey := &testClient{t: t, h: c.h, fs: c.fs, alg: "ES256", key: certKey}
	if rec := byKey.post("/acme/prov/revoke-cert", []byte(`{"certificate":"MAA"}`)); rec.Code != 200 {
		t.Fatalf("revoke by certificate key: %d %s", rec.Code, rec.Body)
	}
	wantProblem(t, c.post("/acme/prov/revoke-cert", []byte(`{"certificate":""}`)), 400, acme.ErrMalformed)
	wantProblem(t, c.post("/acme/prov/revoke-cert", []byte(`{"certificate":"MAA","reason":"x"}`)), 400, acme.ErrMalformed)

	calls := c.fs.revokes
	if len(calls) != 2 {
		t.Fatalf("%d revoke calls", len(calls))
	}
	if calls[0].acct == nil || calls[0].acct.ID != acctID || calls[0].certKey != nil || calls[0].reason == nil || *calls[0].reason != 4 {
		t.Errorf("by account: %+v", calls[0])
	}
	if calls[1].acct != nil || !certKey.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(calls[1].certKey) || calls[1].reason != nil {
		t.Errorf("by key: %+v", calls[1])
	}
	if !bytes.Equal(calls[1].der, []byte{0x30, 0}) {
		t.Errorf("DER = %x", calls[1].der)
	}
}
