package app

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
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
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC())
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
			if r := in.raw("POST", "/api/v1/profiles", in.bearer(), strings.NewReader(tDeviceProfile(t))); r.status != http.StatusCreated {
				t.Fatalf("create profile: %d %s", r.status, tTrim(r.body))
			}
			fn(t, &tESTEnv{in: in, clk: clk, maker: tNewESTCA(t, "Maker IDevID CA")})
		})
	}
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
	})
}
