package app

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ---- harness: an instance whose ACME validation reaches lego's
// challenge servers on loopback, through an in-process DNS server.

// tLegoEnv is a running instance configured for ACME validation: every
// name resolves to 127.0.0.1 in dns, and http-01 and tls-alpn-01 connect
// to httpPort and tlsPort, where lego's challenge servers listen.
type tLegoEnv struct {
	*tInstance
	dns      *validatetest.DNSServer
	httpPort int
	tlsPort  int
}

// tLegoFreePort returns a loopback port nothing listens on right now.
// lego's challenge servers bind it themselves when a challenge starts.
func tLegoFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tLegoNewEnv initialises and starts an instance on dbURL ("" = SQLite).
func tLegoNewEnv(t *testing.T, dbURL string) *tLegoEnv {
	t.Helper()
	srv := validatetest.NewDNSServer(t)
	srv.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	e := &tLegoEnv{dns: srv, httpPort: tLegoFreePort(t), tlsPort: tLegoFreePort(t)}
	cfg := tConfig(t, dbURL)
	cfg.ACME.HTTP01Port = e.httpPort
	cfg.ACME.TLSALPN01Port = e.tlsPort
	cfg.ACME.Resolver = srv.Addr()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	tInit(t, cfg, clock.Real{})
	e.tInstance = tStart(t, cfg, clock.Real{})
	return e
}

// directoryURL is provisioner prov's ACME directory on this instance.
func (e *tLegoEnv) directoryURL(prov string) string {
	return e.l.HTTPSURL + "/acme/" + prov + "/directory"
}

// tLegoUser is the registration.User lego acts for.
type tLegoUser struct {
	key crypto.PrivateKey
	reg *registration.Resource
}

func (u *tLegoUser) GetEmail() string                        { return "ops@acme.test" }
func (u *tLegoUser) GetRegistration() *registration.Resource { return u.reg }
func (u *tLegoUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// tLegoDNSProvider presents dns-01 records in the instance's DNS server
// (RFC 8555 §8.4: base64url(SHA-256(key authorization)) at
// _acme-challenge.NAME).
type tLegoDNSProvider struct {
	srv *validatetest.DNSServer
}

func (p *tLegoDNSProvider) Present(domain, _, keyAuth string) error {
	sum := sha256.Sum256([]byte(keyAuth))
	p.srv.AddTXT("_acme-challenge."+domain, base64.RawURLEncoding.EncodeToString(sum[:]))
	return nil
}

func (p *tLegoDNSProvider) CleanUp(domain, _, _ string) error {
	p.srv.ClearTXT("_acme-challenge." + domain)
	return nil
}

// tLegoProvider counts the challenges a provider presented, so a test can
// tell which challenge type proved the name.
type tLegoProvider struct {
	challenge.Provider
	presented atomic.Int32
}

func (p *tLegoProvider) Present(domain, token, keyAuth string) error {
	p.presented.Add(1)
	return p.Provider.Present(domain, token, keyAuth)
}

// Timeout is lego's dns-01 propagation wait; it sleeps one interval before
// asking for validation, and the records here are live at once.
func (p *tLegoProvider) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 50 * time.Millisecond
}

// tLegoAcct is a lego client with its user and challenge providers.
type tLegoAcct struct {
	*lego.Client
	user      *tLegoUser
	providers map[string]*tLegoProvider // by challenge type
}

// newClient returns a lego client for provisioner prov with account key
// key, solving only the given challenge types.
func (e *tLegoEnv) newClient(t *testing.T, prov string, key crypto.PrivateKey, challenges ...string) *tLegoAcct {
	t.Helper()
	a := &tLegoAcct{user: &tLegoUser{key: key}, providers: map[string]*tLegoProvider{}}
	cfg := lego.NewConfig(a.user)
	cfg.CADirURL = e.directoryURL(prov)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	cfg.UserAgent = "certwright-lego-test"
	cfg.Certificate.KeyType = certcrypto.EC256
	cfg.Certificate.Timeout = 20 * time.Second
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego.NewClient: %v", err)
	}
	a.Client = c
	for _, ch := range challenges {
		var err error
		switch ch {
		case "http-01":
			p := &tLegoProvider{Provider: http01.NewProviderServer("127.0.0.1", strconv.Itoa(e.httpPort))}
			a.providers[ch] = p
			err = c.Challenge.SetHTTP01Provider(p)
		case "tls-alpn-01":
			p := &tLegoProvider{Provider: tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(e.tlsPort))}
			a.providers[ch] = p
			err = c.Challenge.SetTLSALPN01Provider(p)
		case "dns-01":
			p := &tLegoProvider{Provider: &tLegoDNSProvider{srv: e.dns}}
			a.providers[ch] = p
			// The test DNS server is the only one that knows the
			// record; lego's propagation check would ask others. Its
			// CNAME lookups go to the test server too: by default lego
			// asks the system's resolvers, off this machine.
			err = c.Challenge.SetDNS01Provider(p, dns01.WrapPreCheck(
				func(_, _, _ string, _ dns01.PreCheckFunc) (bool, error) { return true, nil }),
				dns01.AddRecursiveNameservers([]string{e.dns.Addr()}))
		default:
			t.Fatalf("unknown challenge type %q", ch)
		}
		if err != nil {
			t.Fatalf("set %s provider: %v", ch, err)
		}
	}
	return a
}

// register creates the account (no EAB) and returns its URL.
func (a *tLegoAcct) register(t *testing.T) string {
	t.Helper()
	reg, err := a.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if reg.URI == "" || reg.Body.Status != "valid" {
		t.Fatalf("register: account %q with status %q, want a URL and valid", reg.URI, reg.Body.Status)
	}
	a.user.reg = reg
	return reg.URI
}

// tLegoCert is an obtained certificate, parsed.
type tLegoCert struct {
	res    *certificate.Resource
	leaf   *x509.Certificate
	issuer *x509.Certificate
	chain  []*x509.Certificate // leaf first, as served
	serial string              // as the inventory names it
}

// obtain gets a certificate for names and fails t if lego cannot.
func (a *tLegoAcct) obtain(t *testing.T, req certificate.ObtainRequest) *tLegoCert {
	t.Helper()
	req.Bundle = true
	res, err := a.Certificate.Obtain(req)
	if err != nil {
		t.Fatalf("obtain %v: %v", req.Domains, err)
	}
	return tLegoParse(t, res)
}

func tLegoParse(t *testing.T, res *certificate.Resource) *tLegoCert {
	t.Helper()
	var chain []*x509.Certificate
	rest := res.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			t.Fatalf("chain holds a %s block", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("parse chain: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("chain holds %d certificates, want the leaf and its issuer", len(chain))
	}
	return &tLegoCert{res: res, leaf: chain[0], issuer: chain[1], chain: chain, serial: pki.SerialHex(chain[0].SerialNumber)}
}

// verify checks the chain up to the instance's root for name.
func (e *tLegoEnv) verify(t *testing.T, c *tLegoCert, name string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, ic := range c.chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := c.leaf.Verify(x509.VerifyOptions{
		Roots: e.pool, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Fatalf("chain does not verify for %s against the root: %v", name, err)
	}
}

// ocspStatus asks the instance's plain-HTTP OCSP responder, at the path the
// certificate names, about c.
func (e *tLegoEnv) ocspStatus(t *testing.T, c *tLegoCert) *ocsp.Response {
	t.Helper()
	if len(c.leaf.OCSPServer) == 0 {
		t.Fatal("certificate names no OCSP responder")
	}
	u, err := url.Parse(c.leaf.OCSPServer[0])
	if err != nil {
		t.Fatal(err)
	}
	der, err := ocsp.CreateRequest(c.leaf, c.issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.l.HTTPURL+u.Path, "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatalf("OCSP: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OCSP: status %d: %q", resp.StatusCode, tTrim(body))
	}
	r, err := ocsp.ParseResponseForCert(body, c.leaf, c.issuer)
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	return r
}

// tLegoWantProblem fails t unless err carries an ACME problem of type typ
// (the short name, e.g. "unauthorized").
func tLegoWantProblem(t *testing.T, err error, typ string) *legoacme.ProblemDetails {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want an ACME %s problem", typ)
	}
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) {
		t.Fatalf("error %v carries no ACME problem, want %s", err, typ)
	}
	if want := "urn:ietf:params:acme:error:" + typ; pd.Type != want {
		t.Fatalf("problem %s (%s), want %s", pd.Type, pd.Detail, want)
	}
	return pd
}

// ---- raw JWS, for what lego does not send

// tLegoDirectory is the part of an ACME directory (RFC 8555 §7.1.1) the
// raw requests use.
type tLegoDirectory struct {
	NewNonce   string `json:"newNonce"`
	NewAccount string `json:"newAccount"`
	NewOrder   string `json:"newOrder"`
	RevokeCert string `json:"revokeCert"`
	KeyChange  string `json:"keyChange"`
}

func (e *tLegoEnv) directory(t *testing.T, prov string) tLegoDirectory {
	t.Helper()
	resp, err := e.client.Get(e.directoryURL(prov))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d tLegoDirectory
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.NewNonce == "" {
		t.Fatalf("directory: status %d, %v", resp.StatusCode, err)
	}
	return d
}

// nonce gets a fresh nonce with HEAD new-nonce (RFC 8555 §7.2).
func (e *tLegoEnv) nonce(t *testing.T, d tLegoDirectory) string {
	t.Helper()
	resp, err := e.client.Head(d.NewNonce)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if resp.StatusCode != http.StatusOK || n == "" {
		t.Fatalf("HEAD new-nonce: status %d, nonce %q", resp.StatusCode, n)
	}
	return n
}

// tLegoSign returns the flattened JWS (RFC 7515 §7.2.2) of payload signed
// by key: with kid as the key ID, or with the public key embedded as jwk
// when kid is empty. headers go into the protected header.
func tLegoSign(t *testing.T, key crypto.Signer, kid string, headers map[string]string, payload []byte) []byte {
	t.Helper()
	var alg jose.SignatureAlgorithm
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		alg = map[elliptic.Curve]jose.SignatureAlgorithm{elliptic.P256(): jose.ES256, elliptic.P384(): jose.ES384}[k.Curve]
	case *rsa.PublicKey:
		alg = jose.RS256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	}
	if alg == "" {
		t.Fatalf("no JWS algorithm for %T", key.Public())
	}
	opts := &jose.SignerOptions{EmbedJWK: kid == ""}
	for k, v := range headers {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	signingKey := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		signingKey.Key = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}
	}
	s, err := jose.NewSigner(signingKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(obj.FullSerialize())
}

// post sends payload to u as an ACME POST signed by key (kid as in
// tLegoSign) with a fresh nonce.
func (e *tLegoEnv) post(t *testing.T, d tLegoDirectory, u string, key crypto.Signer, kid string, payload []byte) tResp {
	t.Helper()
	body := tLegoSign(t, key, kid, map[string]string{"nonce": e.nonce(t, d), "url": u}, payload)
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/jose+json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return tResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// tLegoProblemType is the ACME error type of a problem answer ("" for none).
func tLegoProblemType(r tResp) string {
	var p struct {
		Type string `json:"type"`
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || json.Unmarshal(r.body, &p) != nil {
		return ""
	}
	return strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
}

// ---- tests

// TestLegoHTTP01 registers without EAB and obtains a certificate with
// http-01; the certificate chains to the root, is in the inventory under
// the account's name, was audited, and OCSP says good.
func TestLegoHTTP01(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := tLegoNewEnv(t, be.dbURL(t))
			a := e.newClient(t, "default", tECKey(t, elliptic.P256()), "http-01")
			acctURL := a.register(t)
			c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"app.acme.test"}})
			if n := a.providers["http-01"].presented.Load(); n != 1 {
				t.Errorf("http-01 presented %d times, want 1", n)
			}
			e.verify(t, c, "app.acme.test")
			if !slices.Equal(c.leaf.DNSNames, []string{"app.acme.test"}) {
				t.Errorf("SANs %v, want [app.acme.test]", c.leaf.DNSNames)
			}

			requester := "acme:default/" + path.Base(acctURL)
			var inv apitypes.Certificate
			e.must(http.StatusOK, "GET", "/api/v1/certificates/"+c.serial, nil, &inv)
			if inv.Requester != requester {
				t.Errorf("inventory requester %q, want %q", inv.Requester, requester)
			}
			if !slices.Contains(inv.Tags, "acme") {
				t.Errorf("inventory tags %v lack acme", inv.Tags)
			}
			if inv.Profile != "web_server" || inv.CA != "issuing" {
				t.Errorf("inventory says profile %s on CA %s, want web_server on issuing", inv.Profile, inv.CA)
			}

			r := e.call("GET", "/api/v1/audit/events", nil)
			if r.status != http.StatusOK {
				t.Fatalf("audit events: status %d: %s", r.status, tTrim(r.body))
			}
			var issued []apitypes.AuditEvent
			sc := bufio.NewScanner(bytes.NewReader(r.body))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var ev apitypes.AuditEvent
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("audit line %q: %v", tTrim(sc.Bytes()), err)
				}
				if ev.Action == "certificate.issue" && ev.Target == c.serial {
					issued = append(issued, ev)
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if len(issued) != 1 {
				t.Fatalf("%d certificate.issue events for %s, want 1", len(issued), c.serial)
			}
			if ev := issued[0]; ev.Principal != requester || ev.Outcome != "success" {
				t.Errorf("certificate.issue by %q (%s), want %q (success)", ev.Principal, ev.Outcome, requester)
			}

			if st := e.ocspStatus(t, c); st.Status != ocsp.Good {
				t.Errorf("OCSP status %d, want good", st.Status)
			}
		})
	}
}

// TestLegoDNS01 obtains with dns-01 only: the record goes into the DNS
// server validation asks.
func TestLegoDNS01(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	a := e.newClient(t, "default", tECKey(t, elliptic.P256()), "dns-01")
	a.register(t)
	c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"dns.acme.test"}})
	if n := a.providers["dns-01"].presented.Load(); n != 1 {
		t.Errorf("dns-01 presented %d times, want 1", n)
	}
	e.verify(t, c, "dns.acme.test")
}

// TestLegoTLSALPN01 obtains with tls-alpn-01 only.
func TestLegoTLSALPN01(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	a := e.newClient(t, "default", tECKey(t, elliptic.P256()), "tls-alpn-01")
	a.register(t)
	c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"alpn.acme.test"}})
	if n := a.providers["tls-alpn-01"].presented.Load(); n != 1 {
		t.Errorf("tls-alpn-01 presented %d times, want 1", n)
	}
	e.verify(t, c, "alpn.acme.test")
}

// tLegoWildProfile allows wildcards under acme.test (web_server does not).
const tLegoWildProfile = `name: wild_web
keys: [{algorithm: ECDSA, min_bits: 256}]
max_validity_days: 90
renew_before_days: 30
key_usage: [digital_signature]
ext_key_usage: [server_auth]
names:
  dns: {allow: true, allow_wildcard: true, suffixes: [acme.test]}
  require_san: true
subject_fields: [common_name]
`

// TestLegoWildcard obtains *.wild.acme.test with dns-01 from a
// provisioner on a profile that allows wildcards.
func TestLegoWildcard(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	if r := e.raw("POST", "/api/v1/profiles", e.bearer(), strings.NewReader(tLegoWildProfile)); r.status != http.StatusCreated {
		t.Fatalf("create profile: %d %s", r.status, tTrim(r.body))
	}
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "wild", CA: "issuing", Profile: "wild_web", Challenges: []string{"dns-01"},
	}, nil)
	a := e.newClient(t, "wild", tECKey(t, elliptic.P256()), "dns-01")
	a.register(t)
	c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"*.wild.acme.test"}})
	if !slices.Equal(c.leaf.DNSNames, []string{"*.wild.acme.test"}) {
		t.Errorf("SANs %v, want [*.wild.acme.test]", c.leaf.DNSNames)
	}
	e.verify(t, c, "www.wild.acme.test")
	var inv apitypes.Certificate
	e.must(http.StatusOK, "GET", "/api/v1/certificates/"+c.serial, nil, &inv)
	if inv.Profile != "wild_web" {
		t.Errorf("issued under profile %s, want wild_web", inv.Profile)
	}
}

// TestLegoEAB: a provisioner requiring external account binding refuses a
// bare registration; a key bound to a principal scoped to *.team.acme.test
// registers one account, which may get names in that scope only.
func TestLegoEAB(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
		Name: "teams", CA: "issuing", Profile: "web_server", RequireEAB: true,
	}, nil)

	bare := e.newClient(t, "teams", tECKey(t, elliptic.P256()), "http-01")
	_, err := bare.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	tLegoWantProblem(t, err, "externalAccountRequired")

	e.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
		Name: "team-bot", Kind: "machine", Role: "issuer", Scope: apitypes.Scope{Names: []string{"*.team.acme.test"}},
	}, nil)
	var eab apitypes.NewEABKey
	e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners/teams/eab",
		apitypes.CreateEABKeyRequest{Principal: "team-bot", Description: "team CI"}, &eab)
	if eab.KeyID == "" || eab.HMACKey == "" {
		t.Fatalf("EAB answer %+v lacks key_id or hmac_key", eab)
	}

	a := e.newClient(t, "teams", tECKey(t, elliptic.P256()), "http-01")
	reg, err := a.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: eab.KeyID, HmacEncoded: eab.HMACKey,
	})
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	a.user.reg = reg

	c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"a.team.acme.test"}})
	e.verify(t, c, "a.team.acme.test")
	var inv apitypes.Certificate
	e.must(http.StatusOK, "GET", "/api/v1/certificates/"+c.serial, nil, &inv)
	if want := "acme:teams/" + path.Base(reg.URI) + " (principal team-bot)"; inv.Requester != want {
		t.Errorf("requester %q, want %q", inv.Requester, want)
	}

	_, err = a.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"b.other.acme.test"}, Bundle: true})
	tLegoWantProblem(t, err, "rejectedIdentifier")

	second := e.newClient(t, "teams", tECKey(t, elliptic.P256()), "http-01")
	_, err = second.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: eab.KeyID, HmacEncoded: eab.HMACKey,
	})
	tLegoWantProblem(t, err, "unauthorized")
}

// TestLegoRenewWithARI: renewal information suggests a window inside the
// validity until an operator says renew now; then the window has opened,
// a renewal naming the certificate in "replaces" succeeds, and a second
// one naming it is refused as already replaced (RFC 9773 §5).
func TestLegoRenewWithARI(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	key := tECKey(t, elliptic.P256())
	a := e.newClient(t, "default", key, "http-01")
	acctURL := a.register(t)
	c := a.obtain(t, certificate.ObtainRequest{Domains: []string{"renew.acme.test"}})

	ri, err := a.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: c.leaf})
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	w := ri.SuggestedWindow
	if w.Start.Before(c.leaf.NotBefore) || w.End.After(c.leaf.NotAfter) || !w.Start.Before(w.End) {
		t.Errorf("window %s..%s is not inside the validity %s..%s", w.Start, w.End, c.leaf.NotBefore, c.leaf.NotAfter)
	}
	if !w.Start.After(time.Now()) {
		t.Errorf("window opens at %s for a fresh certificate, want later", w.Start)
	}
	if ri.RetryAfter <= 0 {
		t.Errorf("renewal info Retry-After %s, want positive", ri.RetryAfter)
	}

	var rn apitypes.RenewNowResult
	e.must(http.StatusOK, "POST", "/api/v1/acme/renew-now", apitypes.RenewNowRequest{Serial: c.serial}, &rn)
	if rn.Count != 1 || !slices.Contains(rn.Serials, c.serial) {
		t.Fatalf("renew-now moved %v, want [%s]", rn.Serials, c.serial)
	}
	ri, err = a.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: c.leaf})
	if err != nil {
		t.Fatalf("renewal info after renew-now: %v", err)
	}
	if start := ri.SuggestedWindow.Start; start.After(time.Now()) {
		t.Errorf("after renew-now the window opens at %s, after now", start)
	}

	certID, err := certificate.MakeARICertID(c.leaf)
	if err != nil {
		t.Fatal(err)
	}
	renewed := a.obtain(t, certificate.ObtainRequest{Domains: []string{"renew.acme.test"}, ReplacesCertID: certID})
	if renewed.serial == c.serial {
		t.Fatal("renewal returned the same certificate")
	}
	e.verify(t, renewed, "renew.acme.test")

	// lego drops "replaces" and retries when told alreadyReplaced, so
	// this order goes out by hand.
	d := e.directory(t, "default")
	order, _ := json.Marshal(map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": "renew.acme.test"}},
		"replaces":    certID,
	})
	r := e.post(t, d, d.NewOrder, key, acctURL, order)
	if r.status != http.StatusConflict || tLegoProblemType(r) != "alreadyReplaced" {
		t.Errorf("second order replacing %s: status %d, problem %q, want 409 alreadyReplaced: %s", certID, r.status, tLegoProblemType(r), tTrim(r.body))
	}
}

// TestLegoRevoke revokes one certificate with the account key (lego) and
// another with a JWS signed by the certificate's own key; OCSP says
// revoked for both.
func TestLegoRevoke(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	a := e.newClient(t, "default", tECKey(t, elliptic.P256()), "http-01")
	a.register(t)

	byAccount := a.obtain(t, certificate.ObtainRequest{Domains: []string{"rev1.acme.test"}})
	reason := uint(4) // superseded
	if err := a.Certificate.RevokeWithReason(byAccount.res.Certificate, &reason); err != nil {
		t.Fatalf("revoke with the account key: %v", err)
	}
	st := e.ocspStatus(t, byAccount)
	if st.Status != ocsp.Revoked || st.RevocationReason != ocsp.Superseded {
		t.Errorf("OCSP after account revocation: status %d reason %d, want revoked, superseded", st.Status, st.RevocationReason)
	}

	byKey := a.obtain(t, certificate.ObtainRequest{Domains: []string{"rev2.acme.test"}})
	certKey, err := certcrypto.ParsePEMPrivateKey(byKey.res.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, ok := certKey.(crypto.Signer)
	if !ok {
		t.Fatalf("certificate key %T is not a signer", certKey)
	}
	d := e.directory(t, "default")
	payload, _ := json.Marshal(map[string]any{
		"certificate": base64.RawURLEncoding.EncodeToString(byKey.leaf.Raw), "reason": 1,
	})
	if r := e.post(t, d, d.RevokeCert, signer, "", payload); r.status != http.StatusOK {
		t.Fatalf("revoke signed by the certificate key: status %d: %s", r.status, tTrim(r.body))
	}
	st = e.ocspStatus(t, byKey)
	if st.Status != ocsp.Revoked || st.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("OCSP after certificate-key revocation: status %d reason %d, want revoked, keyCompromise", st.Status, st.RevocationReason)
	}
	// Once is enough.
	if r := e.post(t, d, d.RevokeCert, signer, "", payload); tLegoProblemType(r) != "alreadyRevoked" {
		t.Errorf("second revocation: status %d, problem %q, want alreadyRevoked", r.status, tLegoProblemType(r))
	}
}

// TestLegoKeyRollover rolls an account over to a new key (RFC 8555
// §7.3.5, by hand: lego has no key change); the old key then finds no
// account and the new key finds this one.
func TestLegoKeyRollover(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	oldKey, newKey := tECKey(t, elliptic.P256()), tECKey(t, elliptic.P384())
	a := e.newClient(t, "default", oldKey, "http-01")
	acctURL := a.register(t)

	d := e.directory(t, "default")
	oldJWK, err := jose.JSONWebKey{Key: oldKey.Public()}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := json.Marshal(map[string]any{"account": acctURL, "oldKey": json.RawMessage(oldJWK)})
	innerJWS := tLegoSign(t, newKey, "", map[string]string{"url": d.KeyChange}, inner)
	if r := e.post(t, d, d.KeyChange, oldKey, acctURL, innerJWS); r.status != http.StatusOK {
		t.Fatalf("key change: status %d: %s", r.status, tTrim(r.body))
	}

	_, err = e.newClient(t, "default", oldKey).Registration.ResolveAccountByKey()
	tLegoWantProblem(t, err, "accountDoesNotExist")

	b := e.newClient(t, "default", newKey, "http-01")
	reg, err := b.Registration.ResolveAccountByKey()
	if err != nil {
		t.Fatalf("find the account by the new key: %v", err)
	}
	if reg.URI != acctURL {
		t.Errorf("the new key finds account %s, want %s", reg.URI, acctURL)
	}
}

// TestLegoDeactivate deactivates an account; it can order nothing after.
func TestLegoDeactivate(t *testing.T) {
	t.Parallel()
	e := tLegoNewEnv(t, "")
	a := e.newClient(t, "default", tECKey(t, elliptic.P256()), "http-01")
	a.register(t)
	if err := a.Registration.DeleteRegistration(); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	_, err := a.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{"gone.acme.test"}, Bundle: true})
	tLegoWantProblem(t, err, "unauthorized")
	if n := a.providers["http-01"].presented.Load(); n != 0 {
		t.Errorf("a deactivated account got %d challenges", n)
	}
}
