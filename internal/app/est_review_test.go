package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	globalest "github.com/globalsign/est"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/est"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tESTEnv is an instance with the device_1h profile and an IDevID maker.
type tESTEnv struct {
	in    *tInstance
	clk   *clock.Fake
	maker *tESTCA
}

// tESTReviewRun runs fn on a fresh instance per backend.
func tESTReviewRun(t *testing.T, fn func(t *testing.T, e *tESTEnv)) {
	tStillRun(t, func(t *testing.T, in *tInstance, clk *clock.Fake) {
		if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tDeviceProfile(t))); r.status != http.StatusCreated {
			t.Fatalf("create profile: %d %s", r.status, tTrim(r.body))
		}
		fn(t, &tESTEnv{in: in, clk: clk, maker: tNewESTCA(t, "Maker IDevID CA")})
	})
}

// provisioner creates provisioner name with auth and (for IDevIDs) the maker's bundle.
func (e *tESTEnv) provisioner(t *testing.T, req apitypes.CreateESTProvisionerRequest) apitypes.ESTProvisioner {
	t.Helper()
	if req.CA == "" {
		req.CA, req.Profile = "issuing", "device_1h"
	}
	if req.Auth != "basic" && req.BootstrapPEM == "" {
		req.BootstrapPEM = e.maker.pem()
	}
	var p apitypes.ESTProvisioner
	e.in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners", req, &p)
	return p
}

func (e *tESTEnv) secret(t *testing.T, prov, id string) string {
	t.Helper()
	var sec apitypes.NewESTSecret
	e.in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners/"+prov+"/secrets", apitypes.CreateESTSecretRequest{Identity: id}, &sec)
	return sec.Secret
}

// post sends body to op of prov with HTTP Basic user:pwd when user is set.
func (e *tESTEnv) post(t *testing.T, prov, op, body, user, pwd string) tResp {
	t.Helper()
	req, err := http.NewRequest("POST", e.in.l.HTTPSURL+"/.well-known/est/"+prov+"/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	if user != "" {
		req.SetBasicAuth(user, pwd)
	}
	resp, err := e.in.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, rerr := resp.Body.Read(buf)
		b.WriteString(string(buf[:n]))
		if rerr != nil {
			break
		}
	}
	return tResp{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}

func tCSRBody(t *testing.T, cn string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(tESTCSR(t, tECKey(t, elliptic.P256()), cn, cn).Raw)
}

// tESTEnrollAudits counts est.enroll audit events since seq.
func tESTEnrollAudits(t *testing.T, in *tInstance, from int64) int {
	n := 0
	for _, ev := range tAuditEvents(t, in, from) {
		if ev.Action == "est.enroll" && ev.Outcome != audit.Success {
			n++
		}
	}
	return n
}

// TestESTUnauthenticatedFlood (H1): requests without a credential, with
// bodies that are no CSR, or CSRs whose signature fails, are refused with
// 401 and WWW-Authenticate, write no audit row each, and spend the
// source's budget until it gets 429.
func TestESTUnauthenticatedFlood(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "basic"})
		head := tAuditHead(t, e.in)
		csr := tESTCSR(t, tECKey(t, elliptic.P256()), "dev", "dev")
		badSig := append([]byte(nil), csr.Raw...)
		badSig[len(badSig)-3] ^= 0xff
		bodies := []string{
			base64.StdEncoding.EncodeToString(csr.Raw),
			base64.StdEncoding.EncodeToString([]byte("hello world")),
			base64.StdEncoding.EncodeToString(badSig),
		}
		first := e.post(t, "fleet", "simpleenroll", bodies[0], "", "")
		if first.status != http.StatusUnauthorized || !strings.HasPrefix(first.header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("no credential: %d %q, want 401 with WWW-Authenticate", first.status, first.header.Get("WWW-Authenticate"))
		}
		limited := 0
		for i := range 60 {
			r := e.post(t, "fleet", "simpleenroll", bodies[i%3], "", "")
			if r.status == http.StatusTooManyRequests {
				limited++
				if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" || !strings.Contains(string(r.body), "retry in "+ra+" second") {
					t.Errorf("429 says %q with Retry-After %q: they must agree", tTrim(r.body), ra)
				}
			} else if r.status != http.StatusUnauthorized {
				t.Fatalf("request %d without credential: %d %s", i, r.status, tTrim(r.body))
			}
		}
		if limited == 0 {
			t.Error("60 credential-less requests: never 429")
		}
		if n := tESTEnrollAudits(t, e.in, head); n != 0 {
			t.Errorf("credential-less requests wrote %d est.enroll audit rows, want 0", n)
		}
		// A device with a credential sending no CSR gets a short fixed
		// message, not the ASN.1 parser's dump.
		e.clk.Advance(time.Minute)
		const id = "dev-1.devices.example.com"
		r := e.post(t, "fleet", "simpleenroll", bodies[1], id, e.secret(t, "fleet", id))
		if r.status != http.StatusBadRequest || strings.Contains(string(r.body), "structure") || strings.Contains(string(r.body), "{") {
			t.Errorf("not a CSR: %d %q, want 400 with a fixed message", r.status, tTrim(r.body))
		}
	})
}

// TestESTLimiterSparesValidCredentials (M3): once an address has spent
// its failure budget on a provisioner, a device with a valid secret from
// the same address still enrols, and another provisioner's budget is
// its own.
func TestESTLimiterSparesValidCredentials(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "basic"})
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "other", Auth: "basic"})
		const id = "dev-1.devices.example.com"
		secret := e.secret(t, "fleet", id)
		body := tCSRBody(t, id)
		got429 := false
		for range 30 {
			if r := e.post(t, "fleet", "simpleenroll", body, id, "est_0000000000000000_wrong"); r.status == http.StatusTooManyRequests {
				got429 = true
				break
			}
		}
		if !got429 {
			t.Fatal("30 wrong secrets: never 429")
		}
		if r := e.post(t, "fleet", "simpleenroll", body, id, secret); r.status != http.StatusOK {
			t.Errorf("valid secret after the address's failures: %d %s, want 200", r.status, tTrim(r.body))
		}
		if r := e.post(t, "other", "simpleenroll", body, id, "est_0000000000000000_wrong"); r.status != http.StatusUnauthorized {
			t.Errorf("first failure on another provisioner: %d, want 401", r.status)
		}
	})
}

// TestESTReenrollOnce (M2): a certificate that was re-enrolled cannot
// re-enrol again, and each re-enrolment records the certificate it replaces.
func TestESTReenrollOnce(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		ctx := context.Background()
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "basic"})
		const id = "dev-1.devices.example.com"
		key := tECKey(t, elliptic.P256())
		c := tESTClient(e.in, "fleet")
		c.Username, c.Password = id, e.secret(t, "fleet", id)
		cert, err := c.Enroll(ctx, tESTCSR(t, key, id, id))
		if err != nil {
			t.Fatal(err)
		}
		re := tESTClient(e.in, "fleet")
		re.Certificates, re.PrivateKey = []*x509.Certificate{cert}, key
		renewed, err := re.Reenroll(ctx, tESTCSR(t, key, id, id))
		if err != nil {
			t.Fatalf("first re-enrolment: %v", err)
		}
		rec, err := e.in.app.store.GetCertificate(ctx, pki.SerialHex(renewed.SerialNumber))
		if err != nil || rec.Replaces != pki.SerialHex(cert.SerialNumber) {
			t.Errorf("renewed certificate replaces %q (%v), want %s", rec.Replaces, err, pki.SerialHex(cert.SerialNumber))
		}
		for i := range 2 {
			if _, err := re.Reenroll(ctx, tESTCSR(t, key, id, id)); tESTStatus(err) != http.StatusUnauthorized {
				t.Errorf("re-enrolment %d with the replaced certificate: %v, want 401", i+2, err)
			}
		}
		// Racing re-enrolments with one certificate: one wins, the others
		// are refused as a device's doing (401), not a server error.
		statuses := make(chan int, 6)
		for range 6 {
			go func() {
				c := tESTClient(e.in, "fleet")
				c.Certificates, c.PrivateKey = []*x509.Certificate{renewed}, key
				_, err := c.Reenroll(ctx, tESTCSR(t, key, id, id))
				statuses <- tESTStatus(err)
			}()
		}
		won := 0
		for range 6 {
			switch s := <-statuses; s {
			case 0:
				won++
			case http.StatusUnauthorized:
			default:
				t.Errorf("racing re-enrolment: status %d, want 200 or 401", s)
			}
		}
		if won != 1 {
			t.Errorf("%d of 6 racing re-enrolments with one certificate succeeded, want 1", won)
		}
	})
}

// idevidWith issues a device certificate with serial sn, DNS name dns
// (none when empty) and the extended key usages eku.
func (ca *tESTCA) idevidWith(t *testing.T, sn, dns string, eku ...x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := tECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "IDevID " + sn, SerialNumber: sn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(30, 0, 0), ExtKeyUsage: eku}
	if dns != "" {
		tmpl.DNSNames = []string{dns}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// TestESTDeviceAuthModes (M4, L8, L9): "both" needs the IDevID and the
// secret; "any" takes either and ignores a client certificate that is
// no IDevID when a valid secret comes with it; the identity allow-list
// bounds what IDevIDs and secrets enrol; no identity holds '*'; serial
// mode keeps the maker's serial to one label under the operator's
// suffix; IDevIDs need the clientAuth extended key usage (or none).
func TestESTDeviceAuthModes(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		ctx := context.Background()
		const san = "san:*.devices.example.com"
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "both", Auth: "both", IdentityFrom: san})
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "any", Auth: "any", IdentityFrom: san})
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "listed", Auth: "any", IdentityFrom: san,
			AllowedIdentities: []string{"DEV-1.devices.example.com"}}) // DNS identities compare lowercased
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "serial", Auth: "client-cert", IdentityFrom: "serial:.devices.example.com"})
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "plain", Auth: "client-cert", IdentityFrom: "serial"})
		key := tECKey(t, elliptic.P256())
		client := func(prov string, cert *x509.Certificate, ckey *ecdsa.PrivateKey, user, pwd string) *globalest.Client {
			c := tESTClient(e.in, prov)
			if cert != nil {
				c.Certificates, c.PrivateKey = []*x509.Certificate{cert}, ckey
			}
			c.Username, c.Password = user, pwd
			return c
		}
		enrol := func(c *globalest.Client, cn string) int {
			e.clk.Advance(time.Minute) // refusals below must not hit the failure budget
			_, err := c.Enroll(ctx, tESTCSR(t, key, cn, cn))
			if err == nil {
				return http.StatusOK
			}
			return tESTStatus(err)
		}
		const d1, d2 = "dev-1.devices.example.com", "dev-2.devices.example.com"
		c1, k1 := e.maker.idevidWith(t, "SN1", d1, x509.ExtKeyUsageClientAuth)
		if s := enrol(client("both", c1, k1, "", ""), d1); s != http.StatusUnauthorized {
			t.Errorf("auth both, IDevID only: %d, want 401", s)
		}
		if s := enrol(client("both", nil, nil, d1, e.secret(t, "both", d1)), d1); s != http.StatusUnauthorized {
			t.Errorf("auth both, secret only: %d, want 401", s)
		}
		if s := enrol(client("both", c1, k1, d1, e.secret(t, "both", d1)), d1); s != http.StatusOK {
			t.Errorf("auth both, IDevID and secret: %d, want 200", s)
		}
		if s := enrol(client("any", c1, k1, "", ""), d1); s != http.StatusOK {
			t.Errorf("auth any, IDevID: %d, want 200", s)
		}
		foreign, fkey := tNewESTCA(t, "Some Other CA").idevidWith(t, "X", "laptop.example.org", x509.ExtKeyUsageClientAuth)
		if s := enrol(client("any", foreign, fkey, d2, e.secret(t, "any", d2)), d2); s != http.StatusOK {
			t.Errorf("auth any, valid secret with a client certificate that is no IDevID: %d, want 200", s)
		}
		srv, skey := e.maker.idevidWith(t, "SN3", d1, x509.ExtKeyUsageServerAuth)
		if s := enrol(client("any", srv, skey, "", ""), d1); s != http.StatusUnauthorized {
			t.Errorf("IDevID with serverAuth only: %d, want 401", s)
		}
		noEKU, nkey := e.maker.idevidWith(t, "SN4", d1)
		if s := enrol(client("any", noEKU, nkey, "", ""), d1); s != http.StatusOK {
			t.Errorf("IDevID without extended key usage: %d, want 200", s)
		}
		wild, wkey := e.maker.idevidWith(t, "SN5", "*.devices.example.com", x509.ExtKeyUsageClientAuth)
		if s := enrol(client("any", wild, wkey, "", ""), "*.devices.example.com"); s != http.StatusUnauthorized {
			t.Errorf("IDevID naming *.devices.example.com: %d, want 401", s)
		}
		for _, id := range []string{"*.devices.example.com", "*"} {
			if r := e.in.call("POST", "/api/v1/est/provisioners/any/secrets", apitypes.CreateESTSecretRequest{Identity: id}); r.status != http.StatusBadRequest {
				t.Errorf("secret for identity %q: %d, want 400", id, r.status)
			}
		}
		// The allow-list: dev-1 enrols, dev-2's IDevID and a secret for it do not.
		if s := enrol(client("listed", c1, k1, "", ""), d1); s != http.StatusOK {
			t.Errorf("listed identity: %d, want 200", s)
		}
		c2, k2 := e.maker.idevidWith(t, "SN2", d2, x509.ExtKeyUsageClientAuth)
		if s := enrol(client("listed", c2, k2, "", ""), d2); s != http.StatusUnauthorized {
			t.Errorf("IDevID of an identity not on the allow-list: %d, want 401", s)
		}
		if r := e.in.call("POST", "/api/v1/est/provisioners/listed/secrets", apitypes.CreateESTSecretRequest{Identity: d2}); r.status != http.StatusBadRequest {
			t.Errorf("secret for an identity not on the allow-list: %d, want 400", r.status)
		}
		// serial:SUFFIX: the serial becomes one label under the suffix.
		s7, k7 := e.maker.idevidWith(t, "SN0007", "", x509.ExtKeyUsageClientAuth)
		if s := enrol(client("serial", s7, k7, "", ""), "sn0007.devices.example.com"); s != http.StatusOK {
			t.Errorf("serial mode with a suffix: %d, want 200", s)
		}
		bank, bkey := e.maker.idevidWith(t, "www.bank.example", "", x509.ExtKeyUsageClientAuth)
		if s := enrol(client("serial", bank, bkey, "", ""), "www.bank.example.devices.example.com"); s != http.StatusUnauthorized {
			t.Errorf("serial with dots under a suffix: %d, want 401", s)
		}
		if s := enrol(client("plain", bank, bkey, "", ""), "www.bank.example"); s != http.StatusUnauthorized {
			t.Errorf("plain serial mode with a serial that is a DNS name: %d, want 401", s)
		}
		if s := enrol(client("plain", s7, k7, "", ""), "SN0007"); s != http.StatusOK {
			t.Errorf("plain serial mode: %d, want 200", s)
		}
	})
}

// tESTToken creates a principal of kind with role over scope and returns
// its Authorization header.
func tESTToken(t *testing.T, in *tInstance, name, kind, role string, scope apitypes.Scope) string {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{Name: name, Kind: kind, Role: role, Scope: scope, Token: true}, &res)
	return "Bearer " + res.Token.Token
}

// TestESTSecretKeyHandout (M5): a secret for a serverkeygen provisioner
// hands out a private key, so its creator needs key:export and must be
// a machine, as every other key hand-out.
func TestESTSecretKeyHandout(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "kg", Auth: "basic", ServerKeyGen: true})
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "csr", Auth: "basic"})
		human := tESTToken(t, e.in, "hank", "human", "issuer", apitypes.Scope{})
		noExport := "Bearer " + e.in.tPrincipalWithout(t, "noexport", []authz.Permission{authz.PermKeyExport})
		machine := tESTToken(t, e.in, "bot", "machine", "issuer", apitypes.Scope{})
		body := `{"identity":"dev-1.devices.example.com"}`
		for _, c := range []struct {
			who, auth, prov string
			want            int
		}{
			{"a human issuer", human, "kg", http.StatusForbidden},
			{"a machine without key:export", noExport, "kg", http.StatusForbidden},
			{"a machine issuer", machine, "kg", http.StatusCreated},
			{"a human issuer", human, "csr", http.StatusCreated},
			{"a machine without key:export", noExport, "csr", http.StatusCreated},
		} {
			if r := e.in.raw("POST", "/api/v1/est/provisioners/"+c.prov+"/secrets", c.auth, strings.NewReader(body)); r.status != c.want {
				t.Errorf("%s creating a secret on %s: %d %s, want %d", c.who, c.prov, r.status, tTrim(r.body), c.want)
			}
		}
	})
}

// TestESTReadScope (L6): list, show and secrets show only provisioners on
// CAs the caller may read, and "not found" names no provisioner the
// caller cannot read.
func TestESTReadScope(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "secretfleet", Auth: "basic"})
		e.secret(t, "secretfleet", "dev-1.devices.example.com")
		rootOnly := tESTToken(t, e.in, "rooty", "human", "viewer", apitypes.Scope{CAs: []string{"root"}})
		issuing := tESTToken(t, e.in, "issy", "human", "viewer", apitypes.Scope{CAs: []string{"issuing"}})
		var list apitypes.ESTProvisionerList
		r := e.in.raw("GET", "/api/v1/est/provisioners", rootOnly, nil)
		if err := json.Unmarshal(r.body, &list); r.status != http.StatusOK || err != nil || len(list.Provisioners) != 0 {
			t.Errorf("list by a viewer of another CA: %d %s, want 200 and none", r.status, tTrim(r.body))
		}
		for _, path := range []string{"/api/v1/est/provisioners/secretfleet", "/api/v1/est/provisioners/secretfleet/secrets", "/api/v1/est/provisioners/nosuch"} {
			r := e.in.raw("GET", path, rootOnly, nil)
			if r.status != http.StatusNotFound || strings.Contains(string(r.body), "secretfleet") && !strings.HasSuffix(path, "secretfleet") && !strings.HasSuffix(path, "secrets") {
				t.Errorf("GET %s by a viewer of another CA: %d %s, want 404 naming nothing else", path, r.status, tTrim(r.body))
			}
		}
		if r := e.in.raw("GET", "/api/v1/est/provisioners/nosuch", rootOnly, nil); strings.Contains(string(r.body), "secretfleet") {
			t.Errorf("not found lists a provisioner the caller cannot read: %s", tTrim(r.body))
		}
		r = e.in.raw("GET", "/api/v1/est/provisioners", issuing, nil)
		if err := json.Unmarshal(r.body, &list); err != nil || len(list.Provisioners) != 1 {
			t.Errorf("list by a viewer of its CA: %d %s, want the provisioner", r.status, tTrim(r.body))
		}
		for _, path := range []string{"/api/v1/est/provisioners/secretfleet", "/api/v1/est/provisioners/secretfleet/secrets"} {
			if r := e.in.raw("GET", path, issuing, nil); r.status != http.StatusOK {
				t.Errorf("GET %s by a viewer of its CA: %d, want 200", path, r.status)
			}
		}
	})
}

// tIssueThenFail issues through the real issuer, then reports a failure:
// a store that committed the certificate but lost the answer.
type tIssueThenFail struct{ *issue.Service }

func (f tIssueThenFail) Issue(ctx context.Context, req issue.Request) (*issue.Result, error) {
	if _, err := f.Service.Issue(ctx, req); err != nil {
		return nil, err
	}
	return nil, errors.New("store: commit outcome unknown (connection lost)")
}

// TestESTSecretHandBack (L13, L7): a secret is handed back only after a
// refusal that proves nothing was stored, and the hand-back is audited;
// after an issuance that may have stored a certificate it stays used.
// The secret's use carries the request ID, and certificate.issue names
// the device's authentication: method, secret ID or IDevID fingerprint.
func TestESTSecretHandBack(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		ctx := context.Background()
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "any", IdentityFrom: "san:*.devices.example.com"})
		const id = "dev-1.devices.example.com"
		svc, err := est.New(est.Config{Clock: e.clk, Log: slog.New(slog.DiscardHandler)}, e.in.app.store, tIssueThenFail{e.in.app.issuer}, e.in.app.profiles)
		if err != nil {
			t.Fatal(err)
		}
		secret := e.secret(t, "fleet", id)
		before := e.in.certCount()
		_, err = svc.Enrol(ctx, est.Request{Provisioner: "fleet", Op: est.OpEnroll, Body: []byte(tCSRBody(t, id)),
			HasBasic: true, BasicUser: id, BasicPwd: secret, Source: "192.0.2.7", RequestID: "req-l13"})
		if err == nil || e.in.certCount() != before+1 {
			t.Fatalf("issuance that stored and then failed: %v, %d certificates stored", err, e.in.certCount()-before)
		}
		if r := e.post(t, "fleet", "simpleenroll", tCSRBody(t, id), id, secret); r.status != http.StatusUnauthorized {
			t.Errorf("secret after an issuance that stored a certificate: %d, want 401 (used)", r.status)
		}
		var uses []audit.Event
		for _, ev := range tAuditEvents(t, e.in, 0) {
			if ev.Action == "est.secret.use" && ev.Target == strings.Split(secret, "_")[1] {
				uses = append(uses, ev)
			}
		}
		if len(uses) != 1 || uses[0].RequestID != "req-l13" {
			t.Errorf("est.secret.use events: %+v, want one with request ID req-l13", uses)
		}
		// A refusal (CSR for another identity) hands the secret back, audited.
		sec2 := e.secret(t, "fleet", id)
		secID := strings.Split(sec2, "_")[1]
		if r := e.post(t, "fleet", "simpleenroll", tCSRBody(t, "dev-9.devices.example.com"), id, sec2); r.status != http.StatusForbidden {
			t.Fatalf("CSR for another identity: %d, want 403", r.status)
		}
		if got := tAuditOf(t, e.in, "est.secret.release"); len(got) != 1 || !strings.Contains(got[0], secID) {
			t.Errorf("est.secret.release events: %q, want one for %s", got, secID)
		}
		if r := e.post(t, "fleet", "simpleenroll", tCSRBody(t, id), id, sec2); r.status != http.StatusOK {
			t.Fatalf("enrol with the handed-back secret: %d %s", r.status, tTrim(r.body))
		}
		dev, dkey := e.maker.idevidWith(t, "SN1", id, x509.ExtKeyUsageClientAuth)
		c := tESTClient(e.in, "fleet")
		c.Certificates, c.PrivateKey = []*x509.Certificate{dev}, dkey
		if _, err := c.Enroll(ctx, tESTCSR(t, tECKey(t, elliptic.P256()), id, id)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(dev.Raw)
		issued := strings.Join(tAuditOf(t, e.in, "certificate.issue"), "\n")
		for _, want := range []string{`"est_auth":"secret"`, `"est_secret":"` + secID + `"`, `"est_auth":"idevid"`, `"est_idevid_sha256":"` + hex.EncodeToString(sum[:]) + `"`} {
			if !strings.Contains(issued, want) {
				t.Errorf("certificate.issue events lack %s", want)
			}
		}
	})
}

// TestESTSecretRevoke (L12): a leaked secret can be revoked; it then
// authenticates nothing, shows as revoked, and the revocation is audited.
func TestESTSecretRevoke(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "basic"})
		const id = "dev-1.devices.example.com"
		secret := e.secret(t, "fleet", id)
		secID := strings.Split(secret, "_")[1]
		var revoked apitypes.ESTSecret
		e.in.must(http.StatusOK, "POST", "/api/v1/est/provisioners/fleet/secrets/"+secID+"/revoke", nil, &revoked)
		if revoked.Status != "revoked" || revoked.RevokedAt == nil {
			t.Errorf("revoked secret: %+v", revoked)
		}
		if r := e.post(t, "fleet", "simpleenroll", tCSRBody(t, id), id, secret); r.status != http.StatusUnauthorized {
			t.Errorf("enrol with a revoked secret: %d, want 401", r.status)
		}
		if r := e.in.call("POST", "/api/v1/est/provisioners/fleet/secrets/"+secID+"/revoke", nil); r.status != http.StatusConflict {
			t.Errorf("revoke twice: %d, want 409", r.status)
		}
		if r := e.in.call("POST", "/api/v1/est/provisioners/fleet/secrets/0000000000000000/revoke", nil); r.status != http.StatusNotFound {
			t.Errorf("revoke an unknown secret: %d, want 404", r.status)
		}
		var list apitypes.ESTSecretList
		e.in.must(http.StatusOK, "GET", "/api/v1/est/provisioners/fleet/secrets", nil, &list)
		if len(list.Secrets) != 1 || list.Secrets[0].Status != "revoked" {
			t.Errorf("secret list after revoke: %+v", list.Secrets)
		}
		if got := tAuditOf(t, e.in, "est.secret.revoke"); len(got) != 1 || !strings.Contains(got[0], secID) {
			t.Errorf("est.secret.revoke events: %q", got)
		}
	})
}

// tCSRWithPassword is a CSR for cn whose challengePassword attribute is
// pw as a string of ASN.1 tag tag, next to the extension request.
func tCSRWithPassword(t *testing.T, cn, pw string, tag int) []byte {
	t.Helper()
	key := tECKey(t, elliptic.P256())
	csr := tESTCSR(t, key, cn, cn)
	var tbs struct {
		Version int
		Subject asn1.RawValue
		Key     asn1.RawValue
		Attrs   asn1.RawValue `asn1:"optional,tag:0"`
	}
	if _, err := asn1.Unmarshal(csr.RawTBSCertificateRequest, &tbs); err != nil {
		t.Fatal(err)
	}
	val, err := asn1.Marshal(asn1.RawValue{Tag: tag, Bytes: []byte(pw)})
	if err != nil {
		t.Fatal(err)
	}
	attr, err := asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Values asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: val}})
	if err != nil {
		t.Fatal(err)
	}
	tbs.Attrs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(tbs.Attrs.Bytes, attr...)}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(tbsDER)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbsDER}, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, asn1.BitString{Bytes: sig, BitLength: len(sig) * 8}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := x509.ParseCertificateRequest(der); err != nil || c.CheckSignature() != nil {
		t.Fatalf("test CSR: %v", err)
	}
	return der
}

// tBoundEnrol enrols over one TLS connection of version, whose channel
// binding (tls-unique for TLS 1.2, tls-exporter for 1.3) pw turns into the
// CSR's challengePassword; it returns the status.
func tBoundEnrol(t *testing.T, e *tESTEnv, version uint16, user, secret string, tag int, pw func(binding []byte) string) int {
	t.Helper()
	conn, err := tls.Dial("tcp", e.in.httpsAddr(), &tls.Config{RootCAs: e.in.pool, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	cs := conn.ConnectionState()
	binding := cs.TLSUnique
	if version == tls.VersionTLS13 {
		if binding, err = cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err != nil {
			t.Fatal(err)
		}
	}
	if len(binding) == 0 {
		t.Fatalf("TLS %x: no channel binding", version)
	}
	used := false
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
		if used {
			return nil, errors.New("one connection only")
		}
		used = true
		return conn, nil
	}}}
	body := base64.StdEncoding.EncodeToString(tCSRWithPassword(t, user, pw(binding), tag))
	req, _ := http.NewRequest("POST", e.in.l.HTTPSURL+"/.well-known/est/fleet/simpleenroll", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/pkcs10")
	req.SetBasicAuth(user, secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestESTChannelBinding (L10): a CSR whose challengePassword is the
// connection's channel binding (tls-unique on TLS 1.2, tls-exporter on
// TLS 1.3) enrols, one with another connection's binding is refused, and
// a challengePassword that is no channel binding is ignored.
func TestESTChannelBinding(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) {
		e.provisioner(t, apitypes.CreateESTProvisionerRequest{Name: "fleet", Auth: "basic"})
		const id = "dev-1.devices.example.com"
		good := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
		wrong := func(b []byte) string {
			w := bytes.Clone(b)
			w[0] ^= 1
			return base64.StdEncoding.EncodeToString(w)
		}
		for _, c := range []struct {
			name    string
			version uint16
			tag     int
		}{{"TLS 1.2 tls-unique", tls.VersionTLS12, asn1.TagPrintableString}, {"TLS 1.3 tls-exporter", tls.VersionTLS13, asn1.TagUTF8String}} {
			secret := e.secret(t, "fleet", id)
			if s := tBoundEnrol(t, e, c.version, id, secret, c.tag, wrong); s != http.StatusUnauthorized {
				t.Errorf("%s, another connection's binding: %d, want 401", c.name, s)
			}
			if s := tBoundEnrol(t, e, c.version, id, secret, c.tag, good); s != http.StatusOK {
				t.Errorf("%s, this connection's binding: %d, want 200", c.name, s)
			}
		}
		secret := e.secret(t, "fleet", id)
		if s := tBoundEnrol(t, e, tls.VersionTLS13, id, secret, asn1.TagIA5String, func([]byte) string { return "hello" }); s != http.StatusOK {
			t.Errorf("a challengePassword that is no channel binding: %d, want 200 (ignored)", s)
		}
	})
}
