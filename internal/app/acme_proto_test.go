package app

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
)

// ---- a minimal ACME client (RFC 8555), independent of the server's types

// tACURN is the namespace of ACME error types (RFC 8555 §6.7).
const tACURN = "urn:ietf:params:acme:error:"

// tACIdent is an identifier (RFC 8555 §9.7.7, RFC 8738).
type tACIdent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

func tACDNS(name string) tACIdent { return tACIdent{Type: "dns", Value: name} }

// tACProblem is a problem document (RFC 7807, RFC 8555 §6.7).
type tACProblem struct {
	Type        string       `json:"type"`
	Detail      string       `json:"detail"`
	Status      int          `json:"status"`
	Identifier  *tACIdent    `json:"identifier"`
	Subproblems []tACProblem `json:"subproblems"`
	Algorithms  []string     `json:"algorithms"`
}

// tACOrder is an order (RFC 8555 §7.1.3).
type tACOrder struct {
	Status         string      `json:"status"`
	Identifiers    []tACIdent  `json:"identifiers"`
	Authorizations []string    `json:"authorizations"`
	Finalize       string      `json:"finalize"`
	Certificate    string      `json:"certificate"`
	Error          *tACProblem `json:"error"`
}

// tACAuthz is an authorization (RFC 8555 §7.1.4).
type tACAuthz struct {
	Identifier tACIdent       `json:"identifier"`
	Status     string         `json:"status"`
	Wildcard   bool           `json:"wildcard"`
	Challenges []tACChallenge `json:"challenges"`
}

// tACChallenge is a challenge (RFC 8555 §7.1.5).
type tACChallenge struct {
	Type   string      `json:"type"`
	URL    string      `json:"url"`
	Status string      `json:"status"`
	Token  string      `json:"token"`
	Error  *tACProblem `json:"error"`
}

// tACResp is an answer with its body read and, for application/problem+json,
// its problem decoded. sentNonce is the nonce the request carried.
type tACResp struct {
	status    int
	header    http.Header
	body      []byte
	problem   *tACProblem
	sentNonce string
}

func (r *tACResp) String() string {
	if r.problem != nil {
		return fmt.Sprintf("%d %s: %s", r.status, r.problem.Type, r.problem.Detail)
	}
	return fmt.Sprintf("%d %s", r.status, tTrim(r.body))
}

// tACStatusError is an answer with a status the caller did not expect.
type tACStatusError struct {
	what string
	resp *tACResp
}

func (e *tACStatusError) Error() string { return e.what + ": " + e.resp.String() }

// tACClient is one ACME account's client. It is not safe for concurrent
// use: a nonce belongs to one request.
type tACClient struct {
	http  *http.Client
	dir   map[string]any
	key   crypto.Signer
	kid   string
	nonce string
	// thumb is the account key's RFC 7638 thumbprint, for key authorizations.
	thumb string
}

// tACNewClient fetches the directory at dirURL for a client holding key.
func tACNewClient(hc *http.Client, dirURL string, key crypto.Signer) (*tACClient, error) {
	c := &tACClient{http: hc, key: key}
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	c.thumb = base64.RawURLEncoding.EncodeToString(tp)
	r, err := c.get(dirURL)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, &tACStatusError{"directory", r}
	}
	if err := json.Unmarshal(r.body, &c.dir); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	return c, nil
}

// url is the directory entry name ("newOrder", ...).
func (c *tACClient) url(name string) string {
	s, _ := c.dir[name].(string)
	return s
}

func (c *tACClient) do(req *http.Request, sentNonce string) (*tACResp, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL, err)
	}
	r := &tACResp{status: resp.StatusCode, header: resp.Header, body: body, sentNonce: sentNonce}
	if n := resp.Header.Get("Replay-Nonce"); n != "" {
		c.nonce = n
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		r.problem = &tACProblem{}
		if err := json.Unmarshal(body, r.problem); err != nil {
			return nil, fmt.Errorf("%s %s: problem document: %w: %q", req.Method, req.URL, err, tTrim(body))
		}
	}
	return r, nil
}

// get sends an unauthenticated GET (directory, renewal information).
func (c *tACClient) get(url string) (*tACResp, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, "")
}

// takeNonce returns the last Replay-Nonce, or a new one from new-nonce
// (RFC 8555 §7.2). A nonce is used once, so it is forgotten here.
func (c *tACClient) takeNonce() (string, error) {
	if n := c.nonce; n != "" {
		c.nonce = ""
		return n, nil
	}
	req, err := http.NewRequest(http.MethodHead, c.url("newNonce"), nil)
	if err != nil {
		return "", err
	}
	r, err := c.do(req, "")
	if err != nil {
		return "", err
	}
	c.nonce = ""
	n := r.header.Get("Replay-Nonce")
	if r.status != http.StatusOK || n == "" {
		return "", &tACStatusError{"new-nonce", r}
	}
	return n, nil
}

func tACAlg(key crypto.Signer) jose.SignatureAlgorithm {
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return jose.ES384
		}
		return jose.ES256
	case *rsa.PublicKey:
		return jose.RS256
	}
	return jose.EdDSA
}

// sign returns the flattened JWS of payload for url (RFC 8555 §6.2): the
// account URL as kid once there is an account, the public key as jwk before.
func (c *tACClient) sign(url, nonce string, payload []byte) ([]byte, error) {
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"nonce": nonce, "url": url}}
	sk := jose.SigningKey{Algorithm: tACAlg(c.key)}
	if c.kid == "" {
		opts.EmbedJWK = true
		sk.Key = c.key
	} else {
		sk.Key = jose.JSONWebKey{Key: c.key, KeyID: c.kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return nil, err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	return []byte(obj.FullSerialize()), nil
}

// tACPayload turns post's payload into bytes: nil is the empty payload of
// a POST-as-GET, []byte is sent as it is, anything else as JSON.
func tACPayload(payload any) ([]byte, error) {
	switch p := payload.(type) {
	case nil:
		return []byte{}, nil // not nil: go-jose leaves a nil payload out
	case []byte:
		return p, nil
	}
	return json.Marshal(payload)
}

// post signs payload for url and sends it.
func (c *tACClient) post(url string, payload any) (*tACResp, error) {
	body, err := tACPayload(payload)
	if err != nil {
		return nil, err
	}
	nonce, err := c.takeNonce()
	if err != nil {
		return nil, err
	}
	jws, err := c.sign(url, nonce, body)
	if err != nil {
		return nil, err
	}
	return c.postRaw(url, nonce, jws, "application/jose+json")
}

// postRaw sends body as it is; nonce is the one it carries, if any.
func (c *tACClient) postRaw(url, nonce string, body []byte, contentType string) (*tACResp, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return c.do(req, nonce)
}

// postWant posts and fails unless the status is one of want; out, when
// not nil, receives the JSON answer.
func (c *tACClient) postWant(what, url string, payload any, out any, want ...int) (*tACResp, error) {
	r, err := c.post(url, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !slices.Contains(want, r.status) {
		return r, &tACStatusError{what, r}
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			return r, fmt.Errorf("%s: decode: %w: %q", what, err, tTrim(r.body))
		}
	}
	return r, nil
}

// newAccount registers the key (RFC 8555 §7.3) and remembers the account URL.
func (c *tACClient) newAccount() error {
	r, err := c.postWant("new-account", c.url("newAccount"), map[string]any{"termsOfServiceAgreed": true}, nil,
		http.StatusCreated, http.StatusOK)
	if err != nil {
		return err
	}
	if c.kid = r.header.Get("Location"); c.kid == "" {
		return errors.New("new-account: no Location")
	}
	return nil
}

// newOrder creates an order (RFC 8555 §7.4) and returns it with its URL.
func (c *tACClient) newOrder(ids ...tACIdent) (*tACOrder, string, error) {
	var o tACOrder
	r, err := c.postWant("new-order", c.url("newOrder"), map[string]any{"identifiers": ids}, &o, http.StatusCreated)
	if err != nil {
		return nil, "", err
	}
	loc := r.header.Get("Location")
	if loc == "" {
		return nil, "", errors.New("new-order: no Location")
	}
	return &o, loc, nil
}

func (c *tACClient) order(url string) (*tACOrder, error) {
	var o tACOrder
	_, err := c.postWant("order", url, nil, &o, http.StatusOK)
	return &o, err
}

func (c *tACClient) authz(url string) (*tACAuthz, error) {
	var a tACAuthz
	_, err := c.postWant("authorization", url, nil, &a, http.StatusOK)
	return &a, err
}

// respond tells the server to validate a challenge (RFC 8555 §7.5.1).
func (c *tACClient) respond(url string) (*tACChallenge, error) {
	var ch tACChallenge
	_, err := c.postWant("challenge", url, map[string]any{}, &ch, http.StatusOK)
	return &ch, err
}

// poll fetches url every interval until its status is neither pending
// nor processing, for at most timeout, and decodes the last answer into out.
func (c *tACClient) poll(url string, interval, timeout time.Duration, out any) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var st struct {
			Status string `json:"status"`
		}
		r, err := c.postWant("poll", url, nil, &st, http.StatusOK)
		if err != nil {
			return "", err
		}
		if st.Status != "pending" && st.Status != "processing" {
			if out != nil {
				if err := json.Unmarshal(r.body, out); err != nil {
					return "", err
				}
			}
			return st.Status, nil
		}
		if time.Now().After(deadline) {
			return st.Status, fmt.Errorf("poll %s: still %s after %s", url, st.Status, timeout)
		}
		time.Sleep(interval)
	}
}

// finalize submits a CSR (RFC 8555 §7.4).
func (c *tACClient) finalize(url string, csrDER []byte) (*tACOrder, error) {
	var o tACOrder
	_, err := c.postWant("finalize", url, map[string]any{"csr": base64.RawURLEncoding.EncodeToString(csrDER)}, &o, http.StatusOK)
	return &o, err
}

// download fetches the PEM chain (RFC 8555 §7.4.2).
func (c *tACClient) download(url string) ([]byte, error) {
	r, err := c.postWant("certificate", url, nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	if ct := r.header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
		return nil, fmt.Errorf("certificate: Content-Type %q", ct)
	}
	return r.body, nil
}

// keyAuth is the key authorization of token (RFC 8555 §8.1).
func (c *tACClient) keyAuth(token string) string { return token + "." + c.thumb }

// tACChallengeOf returns a's challenge of type typ.
func tACChallengeOf(a *tACAuthz, typ string) (*tACChallenge, error) {
	for i := range a.Challenges {
		if a.Challenges[i].Type == typ {
			return &a.Challenges[i], nil
		}
	}
	return nil, fmt.Errorf("authorization for %s offers no %s challenge", a.Identifier.Value, typ)
}

// tACPollEvery and tACPollFor bound every wait for a status change.
const (
	tACPollEvery = 5 * time.Millisecond
	tACPollFor   = 30 * time.Second
)

// validateHTTP01 proves every authorization of o with http-01, served by
// h01, and waits until each is valid.
func (c *tACClient) validateHTTP01(h01 *tACHTTP01, o *tACOrder) error {
	for _, u := range o.Authorizations {
		a, err := c.authz(u)
		if err != nil {
			return err
		}
		if a.Status == "valid" {
			continue
		}
		ch, err := tACChallengeOf(a, "http-01")
		if err != nil {
			return err
		}
		h01.set(ch.Token, c.keyAuth(ch.Token))
		if _, err := c.respond(ch.URL); err != nil {
			return err
		}
		var done tACAuthz
		st, err := c.poll(u, tACPollEvery, tACPollFor, &done)
		h01.keyAuths.Delete(ch.Token)
		if err != nil {
			return err
		}
		if st != "valid" {
			got, _ := tACChallengeOf(&done, "http-01")
			return fmt.Errorf("authorization for %s is %s: %+v", a.Identifier.Value, st, got.Error)
		}
	}
	return nil
}

// obtain runs a whole order for ids with http-01 and a CSR made with
// csrKey, and returns the final order and the PEM chain.
func (c *tACClient) obtain(h01 *tACHTTP01, csrKey crypto.Signer, ids ...tACIdent) (*tACOrder, []byte, error) {
	o, orderURL, err := c.newOrder(ids...)
	if err != nil {
		return nil, nil, err
	}
	if err := c.validateHTTP01(h01, o); err != nil {
		return nil, nil, err
	}
	csr, err := tACCSR(csrKey, ids...)
	if err != nil {
		return nil, nil, err
	}
	if o, err = c.finalize(o.Finalize, csr); err != nil {
		return nil, nil, err
	}
	if o.Status == "processing" {
		if _, err := c.poll(orderURL, tACPollEvery, tACPollFor, o); err != nil {
			return nil, nil, err
		}
	}
	if o.Status != "valid" || o.Certificate == "" {
		return nil, nil, fmt.Errorf("order %s is %s after finalize (error %+v)", orderURL, o.Status, o.Error)
	}
	chain, err := c.download(o.Certificate)
	return o, chain, err
}

// tACCSR is a CSR for ids; the first DNS name, if any, is the common name.
func tACCSR(key crypto.Signer, ids ...tACIdent) ([]byte, error) {
	var tmpl x509.CertificateRequest
	for _, id := range ids {
		switch id.Type {
		case "dns":
			if tmpl.Subject.CommonName == "" {
				tmpl.Subject = pkix.Name{CommonName: id.Value}
			}
			tmpl.DNSNames = append(tmpl.DNSNames, id.Value)
		case "ip":
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(id.Value))
		}
	}
	return x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
}

// tACRawJWS builds a flattened JWS by hand, for what a well-behaved
// signer refuses to produce.
func tACRawJWS(hdr map[string]any, payload []byte, sign func(input []byte) ([]byte, error)) ([]byte, error) {
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding
	prot, pay := b64.EncodeToString(h), b64.EncodeToString(payload)
	sig, err := sign([]byte(prot + "." + pay))
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"protected": prot, "payload": pay, "signature": b64.EncodeToString(sig)})
}

// tACSignES256 is an RFC 7518 §3.4 signature: r and s, 32 bytes each.
func tACSignES256(key *ecdsa.PrivateKey) func([]byte) ([]byte, error) {
	return func(input []byte) ([]byte, error) {
		h := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	}
}

// tACJWK is key's public JWK as a JSON value.
func tACJWK(key crypto.PublicKey) (json.RawMessage, error) {
	return json.Marshal(jose.JSONWebKey{Key: key})
}

// ---- an instance with a DNS server and an http-01 responder

// tACHTTP01 answers http-01 challenges (RFC 8555 §8.3) on 127.0.0.1 with
// the key authorization stored for the token.
type tACHTTP01 struct {
	port     int
	keyAuths sync.Map // token → key authorization
}

func tACNewHTTP01(tb testing.TB) *tACHTTP01 {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := &tACHTTP01{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
			ka, found := h.keyAuths.Load(token)
			if !ok || !found {
				http.NotFound(w, r)
				return
			}
			_, _ = io.WriteString(w, ka.(string))
		}),
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() { srv.Close(); <-done })
	return h
}

func (h *tACHTTP01) set(token, keyAuth string) { h.keyAuths.Store(token, keyAuth) }

// tACServer is a running instance whose validation resolves every name to
// 127.0.0.1 and reaches http-01 on h01.
type tACServer struct {
	in  *tInstance
	dns *validatetest.DNSServer
	h01 *tACHTTP01
}

// tACStart initialises and serves an instance; tune adjusts the ACME
// configuration before it is validated.
func tACStart(t *testing.T, dbURL string, tune func(*config.ACMEConfig)) *tACServer {
	t.Helper()
	s := &tACServer{dns: validatetest.NewDNSServer(t), h01: tACNewHTTP01(t)}
	s.dns.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	cfg := tConfig(t, dbURL)
	cfg.ACME.HTTP01Port = s.h01.port
	cfg.ACME.Resolver = s.dns.Addr()
	if tune != nil {
		tune(&cfg.ACME)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tInit(t, cfg, clock.Real{})
	s.in = tStart(t, cfg, clock.Real{})
	return s
}

func (s *tACServer) dirURL(prov string) string {
	return s.in.l.HTTPSURL + "/acme/" + prov + "/directory"
}

// client is a client of provisioner prov with a new P-256 key, no account yet.
func (s *tACServer) client(t *testing.T, prov string) *tACClient {
	t.Helper()
	c, err := tACNewClient(s.in.client, s.dirURL(prov), tECKey(t, elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// account is a client of prov with a registered account.
func (s *tACServer) account(t *testing.T, prov string) *tACClient {
	t.Helper()
	c := s.client(t, prov)
	if err := c.newAccount(); err != nil {
		t.Fatal(err)
	}
	return c
}

// tACWantProblem fails t unless r is a problem of type typ answered with
// status and a fresh Replay-Nonce.
func tACWantProblem(t *testing.T, r *tACResp, status int, typ string) *tACProblem {
	t.Helper()
	if r == nil {
		t.Fatalf("no answer, want %d %s", status, typ)
	}
	if r.problem == nil {
		t.Fatalf("answer %s is not a problem document, want %d %s", r, status, typ)
	}
	if r.status != status || r.problem.Type != tACURN+typ {
		t.Errorf("answer %s, want %d %s", r, status, tACURN+typ)
	}
	if r.problem.Status != r.status {
		t.Errorf("problem status member %d, HTTP status %d", r.problem.Status, r.status)
	}
	if n := r.header.Get("Replay-Nonce"); n == "" || n == r.sentNonce {
		t.Errorf("problem answer has Replay-Nonce %q (sent %q), want a fresh one", n, r.sentNonce)
	}
	return r.problem
}

// tACProblemOf returns the answer of an unexpected-status error.
func tACProblemOf(t *testing.T, err error) *tACResp {
	t.Helper()
	var se *tACStatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want an ACME problem answer", err)
	}
	return se.resp
}

func tACNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tACWildProfile allows wildcard DNS names, which web_server does not.
const tACWildProfile = `name: tac_wild
keys: [{algorithm: ECDSA, min_bits: 256}]
max_validity_days: 90
renew_before_days: 30
key_usage: [digital_signature]
ext_key_usage: [server_auth]
names:
  dns: {allow: true, allow_wildcard: true}
  require_san: true
subject_fields: [common_name]
`

// TestACMEProtoFailures drives the protocol's failure paths against one
// instance per backend; each case has an account (key) of its own.
func TestACMEProtoFailures(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			tACFailures(t, tACStart(t, be.dbURL(t), nil))
		})
	}
}

func tACFailures(t *testing.T, s *tACServer) {
	in := s.in
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", map[string]any{
		"name": "tac-restricted", "ca": "issuing", "profile": "web_server", "allow_names": []string{"*.ok.test"},
	}, nil)
	if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tACWildProfile)); r.status != http.StatusCreated {
		t.Fatalf("create profile: %d %s", r.status, r.body)
	}
	in.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", map[string]any{
		"name": "tac-wild", "ca": "issuing", "profile": "tac_wild",
	}, nil)

	t.Run("nonce", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		n := c.nonce
		r, err := c.post(c.kid, nil)
		tACNoErr(t, err)
		if r.status != http.StatusOK {
			t.Fatalf("POST-as-GET account: %s", r)
		}
		c.nonce = n
		r, err = c.post(c.kid, nil)
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusBadRequest, "badNonce")

		for _, garbage := range []string{"garbage", strings.Repeat("A", 48), n + "x"} {
			c.nonce = garbage
			r, err = c.post(c.kid, nil)
			tACNoErr(t, err)
			tACWantProblem(t, r, http.StatusBadRequest, "badNonce")
		}
		// The fresh nonce of the last problem works.
		if _, err := c.postWant("account after badNonce", c.kid, nil, nil, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("url-mismatch", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		nonce, err := c.takeNonce()
		tACNoErr(t, err)
		jws, err := c.sign(c.url("newOrder"), nonce, []byte{})
		tACNoErr(t, err)
		r, err := c.postRaw(c.kid, nonce, jws, "application/jose+json")
		tACNoErr(t, err)
		p := tACWantProblem(t, r, r.status, "unauthorized")
		if r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
			t.Errorf("url mismatch answered %d, want 401 or 403 (%s)", r.status, p.Detail)
		}
	})

	t.Run("bad-algorithm", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		nonce, err := c.takeNonce()
		tACNoErr(t, err)
		mac := []byte("0123456789abcdef0123456789abcdef")
		jws, err := tACRawJWS(map[string]any{"alg": "HS256", "nonce": nonce, "url": c.kid, "kid": c.kid}, []byte{},
			func(in []byte) ([]byte, error) { m := hmac.New(sha256.New, mac); m.Write(in); return m.Sum(nil), nil })
		tACNoErr(t, err)
		r, err := c.postRaw(c.kid, nonce, jws, "application/jose+json")
		tACNoErr(t, err)
		p := tACWantProblem(t, r, http.StatusBadRequest, "badSignatureAlgorithm")
		if !slices.Contains(p.Algorithms, "ES256") {
			t.Errorf("badSignatureAlgorithm lists %v, want the accepted algorithms (ES256 among them)", p.Algorithms)
		}
	})

	t.Run("small-rsa-key", func(t *testing.T) {
		t.Parallel()
		c := s.client(t, "default")
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		tACNoErr(t, err)
		jwk, err := tACJWK(small.Public())
		tACNoErr(t, err)
		nonce, err := c.takeNonce()
		tACNoErr(t, err)
		jws, err := tACRawJWS(map[string]any{"alg": "RS256", "nonce": nonce, "url": c.url("newAccount"), "jwk": jwk},
			[]byte(`{"termsOfServiceAgreed":true}`),
			func(in []byte) ([]byte, error) {
				h := sha256.Sum256(in)
				return rsa.SignPKCS1v15(rand.Reader, small, crypto.SHA256, h[:])
			})
		tACNoErr(t, err)
		r, err := c.postRaw(c.url("newAccount"), nonce, jws, "application/jose+json")
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusBadRequest, "badPublicKey")
	})

	t.Run("jwk-and-kid", func(t *testing.T) {
		t.Parallel()
		key := tECKey(t, elliptic.P256())
		c, err := tACNewClient(in.client, s.dirURL("default"), key)
		tACNoErr(t, err)
		tACNoErr(t, c.newAccount())
		jwk, err := tACJWK(key.Public())
		tACNoErr(t, err)
		for name, keyHdr := range map[string]map[string]any{
			"both":    {"jwk": jwk, "kid": c.kid},
			"neither": {},
		} {
			nonce, err := c.takeNonce()
			tACNoErr(t, err)
			hdr := map[string]any{"alg": "ES256", "nonce": nonce, "url": c.kid}
			for k, v := range keyHdr {
				hdr[k] = v
			}
			jws, err := tACRawJWS(hdr, []byte{}, tACSignES256(key))
			tACNoErr(t, err)
			r, err := c.postRaw(c.kid, nonce, jws, "application/jose+json")
			tACNoErr(t, err)
			if p := tACWantProblem(t, r, http.StatusBadRequest, "malformed"); !strings.Contains(p.Detail, name) {
				t.Errorf("%s: detail %q does not say %q", name, p.Detail, name)
			}
		}
	})

	t.Run("content-type", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		nonce, err := c.takeNonce()
		tACNoErr(t, err)
		jws, err := c.sign(c.kid, nonce, []byte{})
		tACNoErr(t, err)
		r, err := c.postRaw(c.kid, nonce, jws, "text/plain")
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusUnsupportedMediaType, "malformed")
	})

	t.Run("finalize-bad-csr", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		o, orderURL, err := c.newOrder(tACDNS("csr.proto.test"))
		tACNoErr(t, err)
		tACNoErr(t, c.validateHTTP01(s.h01, o))
		if o, err = c.order(orderURL); err != nil || o.Status != "ready" {
			t.Fatalf("order after validation: %+v, %v; want ready", o, err)
		}
		csr, err := tACCSR(tECKey(t, elliptic.P256()), tACDNS("other.proto.test"))
		tACNoErr(t, err)
		_, err = c.finalize(o.Finalize, csr)
		tACWantProblem(t, tACProblemOf(t, err), http.StatusBadRequest, "badCSR")
		if o, err = c.order(orderURL); err != nil || o.Status != "ready" {
			t.Fatalf("order after a rejected CSR: %+v, %v; want still ready", o, err)
		}
		// The right CSR still finalizes it.
		csr, err = tACCSR(tECKey(t, elliptic.P256()), tACDNS("csr.proto.test"))
		tACNoErr(t, err)
		if o, err = c.finalize(o.Finalize, csr); err != nil || o.Status != "valid" {
			t.Fatalf("finalize with the right CSR: %+v, %v", o, err)
		}
	})

	t.Run("finalize-not-ready", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		o, _, err := c.newOrder(tACDNS("early.proto.test"))
		tACNoErr(t, err)
		csr, err := tACCSR(tECKey(t, elliptic.P256()), tACDNS("early.proto.test"))
		tACNoErr(t, err)
		_, err = c.finalize(o.Finalize, csr)
		tACWantProblem(t, tACProblemOf(t, err), http.StatusForbidden, "orderNotReady")
	})

	t.Run("forbidden-name", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "tac-restricted")
		_, _, err := c.newOrder(tACDNS("bad.test"))
		p := tACWantProblem(t, tACProblemOf(t, err), http.StatusBadRequest, "rejectedIdentifier")
		if p.Identifier == nil || p.Identifier.Value != "bad.test" {
			t.Errorf("rejectedIdentifier names %+v, want bad.test", p.Identifier)
		}
		if _, _, err := c.newOrder(tACDNS("a.ok.test")); err != nil {
			t.Errorf("a name the provisioner allows: %v", err)
		}
	})

	t.Run("failed-challenge", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		o, orderURL, err := c.newOrder(tACDNS("fail.proto.test"))
		tACNoErr(t, err)
		a, err := c.authz(o.Authorizations[0])
		tACNoErr(t, err)
		ch, err := tACChallengeOf(a, "http-01")
		tACNoErr(t, err)
		s.h01.set(ch.Token, ch.Token+".not-the-account-thumbprint")
		_, err = c.respond(ch.URL)
		tACNoErr(t, err)
		var done tACAuthz
		st, err := c.poll(o.Authorizations[0], tACPollEvery, tACPollFor, &done)
		tACNoErr(t, err)
		if st != "invalid" {
			t.Fatalf("authorization is %s after a wrong key authorization, want invalid", st)
		}
		got, err := tACChallengeOf(&done, "http-01")
		tACNoErr(t, err)
		if got.Status != "invalid" || got.Error == nil || got.Error.Type != tACURN+"incorrectResponse" {
			t.Errorf("challenge after a wrong key authorization: status %s, error %+v; want invalid, incorrectResponse", got.Status, got.Error)
		}
		if o, err = c.order(orderURL); err != nil || o.Status != "invalid" {
			t.Errorf("order after a failed challenge: %+v, %v; want invalid", o, err)
		}
	})

	t.Run("post-as-get", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		_, orderURL, err := c.newOrder(tACDNS("pag.proto.test"))
		tACNoErr(t, err)
		r, err := c.post(orderURL, map[string]any{})
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusBadRequest, "malformed")
		last := c.nonce
		r, err = c.get(orderURL)
		tACNoErr(t, err)
		r.sentNonce = last
		tACWantProblem(t, r, http.StatusMethodNotAllowed, "malformed")
		if allow := r.header.Get("Allow"); allow != "POST" {
			t.Errorf("405 Allow %q, want POST", allow)
		}
	})

	t.Run("other-account", func(t *testing.T) {
		t.Parallel()
		owner, other := s.account(t, "default"), s.account(t, "default")
		_, orderURL, err := owner.newOrder(tACDNS("mine.proto.test"))
		tACNoErr(t, err)
		r, err := other.post(orderURL, nil)
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusNotFound, "malformed")
		if _, err := owner.order(orderURL); err != nil {
			t.Errorf("the owner reads its order: %v", err)
		}
	})

	t.Run("wildcard", func(t *testing.T) {
		t.Parallel()
		// web_server (the default provisioner's profile) refuses wildcards.
		_, _, err := s.account(t, "default").newOrder(tACDNS("*.wild.proto.test"))
		tACWantProblem(t, tACProblemOf(t, err), http.StatusBadRequest, "rejectedIdentifier")

		c := s.account(t, "tac-wild")
		o, _, err := c.newOrder(tACDNS("*.wild.proto.test"))
		tACNoErr(t, err)
		a, err := c.authz(o.Authorizations[0])
		tACNoErr(t, err)
		var types []string
		for _, ch := range a.Challenges {
			types = append(types, ch.Type)
		}
		if !slices.Equal(types, []string{"dns-01"}) || !a.Wildcard || a.Identifier.Value != "wild.proto.test" {
			t.Errorf("wildcard authorization: identifier %s, wildcard %v, challenges %v; want wild.proto.test, true, [dns-01]",
				a.Identifier.Value, a.Wildcard, types)
		}
	})

	t.Run("ip-identifier", func(t *testing.T) {
		t.Parallel()
		c := s.account(t, "default")
		ip := tACIdent{Type: "ip", Value: "127.0.0.1"}
		o, chainPEM, err := c.obtain(s.h01, tECKey(t, elliptic.P256()), ip)
		tACNoErr(t, err)
		if len(o.Identifiers) != 1 || o.Identifiers[0] != ip {
			t.Errorf("order identifiers %+v, want %+v", o.Identifiers, ip)
		}
		var certs []*x509.Certificate
		for rest := chainPEM; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			tACNoErr(t, err)
			certs = append(certs, cert)
		}
		if len(certs) != 2 {
			t.Fatalf("chain has %d certificates, want the leaf and the issuing CA (not the root)", len(certs))
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		leaf := certs[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: in.pool, Intermediates: inter, DNSName: "127.0.0.1"}); err != nil {
			t.Errorf("chain does not verify for 127.0.0.1: %v", err)
		}
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || len(leaf.DNSNames) != 0 {
			t.Errorf("leaf names: IPs %v, DNS %v; want [127.0.0.1] only", leaf.IPAddresses, leaf.DNSNames)
		}
	})

	t.Run("renewal-info", func(t *testing.T) {
		t.Parallel()
		c := s.client(t, "default")
		b64 := base64.RawURLEncoding
		unknown := b64.EncodeToString(bytes.Repeat([]byte{0xAB}, 20)) + "." + b64.EncodeToString(new(big.Int).SetUint64(0x0123456789abcdef).Bytes())
		for _, tc := range []struct {
			id     string
			status int
		}{
			{unknown, http.StatusNotFound},
			{"no-dot-here", http.StatusBadRequest},
			{"!!!.???", http.StatusBadRequest},
		} {
			r, err := c.get(c.url("renewalInfo") + "/" + tc.id)
			tACNoErr(t, err)
			tACWantProblem(t, r, tc.status, "malformed")
		}
	})

	t.Run("only-return-existing", func(t *testing.T) {
		t.Parallel()
		c := s.client(t, "default")
		r, err := c.post(c.url("newAccount"), map[string]any{"onlyReturnExisting": true})
		tACNoErr(t, err)
		tACWantProblem(t, r, http.StatusBadRequest, "accountDoesNotExist")
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("accountDoesNotExist answered with Location %q", loc)
		}
	})
}

// TestACMEProtoRateLimit checks the per-account order limit and its
// Retry-After.
func TestACMEProtoRateLimit(t *testing.T) {
	t.Parallel()
	s := tACStart(t, "", func(a *config.ACMEConfig) { a.OrdersPerHour = 2 })
	c := s.account(t, "default")
	for i := range 2 {
		if _, _, err := c.newOrder(tACDNS(fmt.Sprintf("r%d.proto.test", i))); err != nil {
			t.Fatalf("order %d of 2: %v", i+1, err)
		}
	}
	_, _, err := c.newOrder(tACDNS("r2.proto.test"))
	r := tACProblemOf(t, err)
	tACWantProblem(t, r, http.StatusTooManyRequests, "rateLimited")
	ra := r.header.Get("Retry-After")
	if secs, err := strconv.Atoi(ra); err != nil || secs <= 0 {
		t.Errorf("Retry-After %q, want delta-seconds", ra)
	}
	// Another account has its own budget.
	if _, _, err := s.account(t, "default").newOrder(tACDNS("r3.proto.test")); err != nil {
		t.Errorf("another account's first order: %v", err)
	}
}

// TestACMEProtoNoncesAcrossReplicas runs two instances on one database: a
// nonce instance A issued is accepted once by instance B, and then refused
// by A. SQLite in WAL mode lets two processes (here, two pools) share the
// file, so both backends run.
func TestACMEProtoNoncesAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			a, b := tStart(t, cfg, clock.Real{}), tStart(t, cfg, clock.Real{})
			key := tECKey(t, elliptic.P256())
			ca, err := tACNewClient(a.client, a.l.HTTPSURL+"/acme/default/directory", key)
			tACNoErr(t, err)
			cb, err := tACNewClient(b.client, b.l.HTTPSURL+"/acme/default/directory", key)
			tACNoErr(t, err)

			nonce, err := ca.takeNonce()
			tACNoErr(t, err)
			cb.nonce = nonce
			if err := cb.newAccount(); err != nil {
				t.Fatalf("instance B refused a nonce from A: %v", err)
			}
			ca.nonce = nonce
			r, err := ca.post(ca.url("newAccount"), map[string]any{"termsOfServiceAgreed": true})
			tACNoErr(t, err)
			tACWantProblem(t, r, http.StatusBadRequest, "badNonce")
			// And A's fresh nonce works on B.
			cb.nonce = ca.nonce
			if _, err := cb.postWant("account on B with A's nonce", cb.kid, nil, nil, http.StatusOK); err != nil {
				t.Error(err)
			}
		})
	}
}
