package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tOCSPStatus asks the instance's plain-HTTP responder, at the path the
// certificate names, about leaf (issued by issuer).
func tOCSPStatus(t *testing.T, in *tInstance, leaf, issuer *x509.Certificate) int {
	t.Helper()
	return tOCSPResponse(t, in, leaf, issuer).Status
}

// tOCSPResponse is the parsed, verified answer of the instance's
// plain-HTTP responder about leaf (issued by issuer).
func tOCSPResponse(t *testing.T, in *tInstance, leaf, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	if len(leaf.OCSPServer) == 0 {
		t.Fatal("certificate names no OCSP responder")
	}
	u, err := url.Parse(leaf.OCSPServer[0])
	if err != nil {
		t.Fatal(err)
	}
	der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(in.l.HTTPURL+u.Path, "application/ocsp-request", bytes.NewReader(der))
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
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	return r
}

// tReuseProfile stores reuse_service: internal_service that allows key
// reuse, so a CSR certificate may be auto-renewed.
func tReuseProfile(t *testing.T, in *tInstance) *profile.Profile {
	t.Helper()
	p, _ := profile.Builtin("internal_service")
	p.Name, p.AllowKeyReuse, p.Builtin = "reuse_service", true, false
	if err := in.app.profiles.Create(context.Background(), authz.System(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRenewalUnderNewApprovalRuleDoesNotCrash is the reproduction of
// issue 13 #8: a certificate auto-renewed with key reuse whose profile
// later gained require_approval. The renewal job used to dereference the
// missing CSR and panic, at every start. Now the renewal fails with an
// error naming the rule, recorded on the certificate (and alerted), the
// job run is recorded, and the server keeps serving OCSP, also after a
// restart.
func TestRenewalUnderNewApprovalRuleDoesNotCrash(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, cfg, clk := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t)
			prof := tReuseProfile(t, in)
			var c apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "reuse.internal.test")), Profile: prof.Name,
				ValidityDays: 30, AutoRenew: true,
			}, &c)
			prof.RequireApproval = true
			if err := in.app.profiles.Update(context.Background(), authz.System(), prof); err != nil {
				t.Fatal(err)
			}
			clk.Advance(24 * 24 * time.Hour) // inside the 7-day renewal window

			// (The scheduler's own start-up run may have got there first:
			// then this run finds the certificate backing off.)
			st := tRunJob(t, in, "renewal")
			if !strings.HasPrefix(st.Detail, "0 renewed") {
				t.Fatalf("renewal run: %s", st.Detail)
			}
			got := tGetCert(t, in, c.Serial)
			if got.RenewedBy != "" || !strings.Contains(got.RenewError, "requires approval") {
				t.Fatalf("after the renewal run: renewed_by %q, renew_error %q", got.RenewedBy, got.RenewError)
			}
			if list, err := in.app.store.ListApprovalRequests(context.Background(), "", 0); err != nil || len(list) != 0 {
				t.Errorf("approval requests stored: %v, %v", list, err)
			}
			// By hand (cert renew --reuse-key): a clear 400, not a dropped connection.
			r := in.call("POST", "/api/v1/certificates/"+c.Serial+"/renew", apitypes.RenewRequest{ReuseKey: true})
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "requires approval") {
				t.Errorf("cert renew --reuse-key: %d %s, want 400 naming the approval rule", r.status, tTrim(r.body))
			}
			leaf, issuer := tPEMCert(t, c.CertificatePEM), tPEMCert(t, c.ChainPEM)
			if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
				t.Errorf("OCSP status %d, want good", s)
			}
			// The renewal job runs at start: a restart comes up and serves.
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			in = tStart(t, cfg, clk)
			clk.Advance(24 * time.Hour) // past the backoff: the job tries again
			// (tRunJob waits out the run the scheduler starts at boot.)
			tRunJob(t, in, "renewal")
			if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
				t.Errorf("OCSP status after restart %d, want good", s)
			}
		})
	}
}

// TestHandlerPanicAnswers500: a panicking handler gets the client a 500
// with the API's error shape (net/http alone drops the connection) and
// the panic is logged with its stack; the server goes on serving.
func TestHandlerPanicAnswers500(t *testing.T) {
	t.Parallel()
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logBuf}, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) {
		var m map[string]int
		m["x"]++
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := httptest.NewServer(recoverHTTP(log, mux))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatalf("GET /boom: %v (the connection was dropped)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"error":"internal error"`) {
		t.Fatalf("GET /boom = %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(srv.URL + "/ok")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ok after the panic = %v, %v", resp, err)
	}
	resp.Body.Close()
	logged := logBuf.String()
	if !strings.Contains(logged, "nil map") || !strings.Contains(logged, "goroutine") || !strings.Contains(logged, "/boom") {
		t.Errorf("the panic was not logged with its stack: %s", logged)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// tServedChain is the server's TLS leaf and its issuer, as presented.
func tServedChain(t *testing.T, in *tInstance) (leaf, issuer *x509.Certificate) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", in.httpsAddr(), in.tlsConfig())
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	pc := conn.ConnectionState().PeerCertificates
	if len(pc) < 2 {
		t.Fatalf("server presented %d certificates, want leaf and issuer", len(pc))
	}
	return pc[0], pc[1]
}

// tRotationItems maps serial to method for a rotation's items.
func tRotationItems(rot apitypes.Rotation) map[string]string {
	m := map[string]string{}
	for _, it := range rot.Items {
		m[it.Serial] = it.Method
	}
	return m
}

// TestRotationByKeyCoversRenewedCertificates reproduces issue 13 #11 for
// --key-spki: a certificate renewed with key reuse left its predecessor,
// with the same (leaked) key, out of the rotation, and OCSP kept saying
// good for it. Every unexpired, unrevoked certificate with the key is in
// the rotation and revoked (keyCompromise) after the grace period.
func TestRotationByKeyCoversRenewedCertificates(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, _, clk := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t)
			prof := tReuseProfile(t, in)
			leaked := tECKey(t, elliptic.P256())
			var first, second apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, leaked, "leak.internal.test")), Profile: prof.Name, ValidityDays: 30,
			}, &first)
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/"+first.Serial+"/renew", apitypes.RenewRequest{ReuseKey: true}, &second)
			if second.SPKISHA256 != first.SPKISHA256 || tGetCert(t, in, first.Serial).RenewedBy != second.Serial {
				t.Fatalf("renewal with key reuse: %s -> %s", first.SPKISHA256, second.SPKISHA256)
			}

			var rot apitypes.Rotation
			in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{SPKISHA256: first.SPKISHA256, Grace: "1h"}, &rot)
			items := tRotationItems(rot)
			if len(items) != 2 || items[first.Serial] == "" || items[second.Serial] == "" {
				t.Fatalf("rotation items = %+v, want both certificates with the leaked key", rot.Items)
			}
			tRunJob(t, in, "rotation")
			clk.Advance(61 * time.Minute)
			tRunJob(t, in, "rotation")
			in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
			if rot.Status != "done" || rot.Counts["revoked"] != 2 {
				t.Fatalf("after the grace period: %s %+v", rot.Status, rot.Items)
			}
			for _, c := range []apitypes.IssuedCertificate{first, second} {
				got := tGetCert(t, in, c.Serial)
				if got.Revocation == nil || got.Revocation.Reason != "key_compromise" {
					t.Errorf("%s after the rotation: %+v", c.Serial, got.Revocation)
				}
				if s := tOCSPStatus(t, in, tPEMCert(t, c.CertificatePEM), tPEMCert(t, c.ChainPEM)); s != ocsp.Revoked {
					t.Errorf("OCSP for %s: status %d, want revoked", c.Serial, s)
				}
			}
		})
	}
}

// TestRotationByCACoversEverything reproduces issue 13 #11 for --ca: an
// already renewed certificate and the server's own TLS certificate stayed
// valid. Every unexpired, unrevoked certificate of the CA is in the
// rotation (the same set as cert revoke-bulk's dry run); the server serves
// a new TLS certificate at once; after the grace period every old one is
// revoked and OCSP says so, and the server goes on serving.
func TestRotationByCACoversEverything(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, _, clk := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t)

			held := tIssueAuto(t, in, "held.internal.test", 30)
			var heldNext apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/"+held.Serial+"/renew", nil, &heldNext)
			var onHost apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "host.internal.test")), Profile: "internal_service", ValidityDays: 30,
			}, &onHost)
			srvLeaf, srvIssuer := tServedChain(t, in)
			srvSerial := tSerialHex(srvLeaf)

			var dry apitypes.BulkRevokeResult
			in.must(http.StatusOK, "POST", "/api/v1/revocations", apitypes.BulkRevokeRequest{
				Selector: apitypes.Selector{CA: "issuing"}, Reason: "superseded", DryRun: true,
			}, &dry)
			var rot apitypes.Rotation
			in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, &rot)
			items := tRotationItems(rot)
			for _, s := range dry.Serials {
				if items[s] == "" {
					t.Errorf("revoke-bulk would revoke %s, the rotation leaves it out", s)
				}
			}
			if len(items) != len(dry.Serials) || len(items) != 4 || items[held.Serial] != "reissue" || items[heldNext.Serial] != "reissue" ||
				items[onHost.Serial] != "signal" || items[srvSerial] != "server" {
				t.Fatalf("rotation items = %+v (server TLS %s), want the 4 valid certificates of the CA", rot.Items, srvSerial)
			}

			tRunJob(t, in, "rotation")
			newLeaf, _ := tServedChain(t, in)
			if newLeaf.SerialNumber.Cmp(srvLeaf.SerialNumber) == 0 {
				t.Fatal("the server still presents the TLS certificate being rotated")
			}
			clk.Advance(61 * time.Minute)
			tRunJob(t, in, "rotation")
			in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
			if rot.Status != "done" || rot.Counts["revoked"] != 4 {
				t.Fatalf("after the grace period: %s %+v", rot.Status, rot.Items)
			}
			for _, c := range []apitypes.IssuedCertificate{held, heldNext, onHost} {
				if s := tOCSPStatus(t, in, tPEMCert(t, c.CertificatePEM), tPEMCert(t, c.ChainPEM)); s != ocsp.Revoked {
					t.Errorf("OCSP for %s: status %d, want revoked", c.Serial, s)
				}
			}
			if s := tOCSPStatus(t, in, srvLeaf, srvIssuer); s != ocsp.Revoked {
				t.Errorf("OCSP for the old server certificate: status %d, want revoked", s)
			}
			// The new server certificate is good and served.
			cur, issuer := tServedChain(t, in)
			if cur.SerialNumber.Cmp(newLeaf.SerialNumber) != 0 {
				t.Errorf("served %s, want the rotation's replacement %s", tSerialHex(cur), tSerialHex(newLeaf))
			}
			if s := tOCSPStatus(t, in, cur, issuer); s != ocsp.Good {
				t.Errorf("OCSP for the new server certificate: status %d, want good", s)
			}
		})
	}
}

func tSerialHex(c *x509.Certificate) string { return pki.SerialHex(c.SerialNumber) }

// TestRotateToCAAuthorisesTheRotatingPrincipal reproduces issue 13 #13: a
// principal limited to CA team started a rotation --to-ca issuing, and
// the certificates were re-issued from issuing. The whole rotation is
// refused with 403 naming the certificate; nothing is stored.
func TestRotateToCAAuthorisesTheRotatingPrincipal(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, _, _ := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t)
			in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
				Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA",
			}, nil)
			var teamCert apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/issue", apitypes.IssueRequest{
				Profile: "internal_service", CA: "team", DNSNames: []string{"svc.team.test"}, ValidityDays: 30, AutoRenew: true,
			}, &teamCert)
			in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "rotator",
				Permissions: []string{"cert:read", "cert:issue", "cert:revoke"}}, nil)
			var res apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "team-rotator", Kind: "machine", Role: "rotator", Scope: apitypes.Scope{CAs: []string{"team"}}, Token: true,
			}, &res)
			team := "Bearer " + res.Token.Token
			certs := in.certCount()

			r := in.raw("POST", "/api/v1/rotations", team, strings.NewReader(tJSON(t, apitypes.RotationRequest{CA: "team", ToCA: "issuing", Grace: "1h"})))
			if r.status != http.StatusForbidden {
				t.Fatalf("scoped rotation --to-ca issuing = %d %s, want 403", r.status, tTrim(r.body))
			}
			if e := r.apiErr(t); !strings.Contains(e.Detail, teamCert.Serial) || !strings.Contains(e.Detail, "issuing") {
				t.Errorf("refusal does not name the certificate and the target CA: %+v", e)
			}
			var list apitypes.RotationList
			in.must(http.StatusOK, "GET", "/api/v1/rotations", nil, &list)
			if len(list.Rotations) != 0 {
				t.Errorf("a refused rotation was stored: %+v", list.Rotations)
			}
			if info := tGetCert(t, in, teamCert.Serial); info.RenewedBy != "" {
				t.Errorf("the certificate was replaced: %+v", info)
			}
			var ri apitypes.RenewalInfo
			in.must(http.StatusOK, "GET", "/api/v1/certificates/"+teamCert.Serial+"/renewal-info", nil, &ri)
			if ri.RenewNow {
				t.Errorf("the refused rotation marked the certificate for renewal: %+v", ri)
			}
			tRunJob(t, in, "rotation")
			if n := in.certCount(); n != certs {
				t.Errorf("%d certificates issued after the refused rotation", n-certs)
			}

			// Within its scope the same principal may rotate.
			r = in.raw("POST", "/api/v1/rotations", team, strings.NewReader(tJSON(t, apitypes.RotationRequest{CA: "team", ToCA: "team", Grace: "1h"})))
			if r.status != http.StatusCreated {
				t.Fatalf("scoped rotation --to-ca team = %d %s", r.status, tTrim(r.body))
			}
		})
	}
}

// TestDeployFailedIsScopedBoundedAndAudited reproduces issue 13 #12: any
// issuer could raise critical alerts with arbitrary text for any host,
// as often as it liked, unaudited. A report now needs a certificate in the
// reporter's scope, is attributed to the reporter (the host is shown as
// reported), has its text cleaned and capped, is limited to one alert per
// reporter and certificate every 10 minutes and 20 per hour, and each
// alert raised is audited.
func TestDeployFailedIsScopedBoundedAndAudited(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Hour).Add(time.Minute))
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
			in.tUseMachineAdmin(t)
			var res apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "team-agent", Kind: "machine", Role: "issuer", Scope: apitypes.Scope{Names: []string{"*.team.test"}}, Token: true,
			}, &res)
			agentAuth := "Bearer " + res.Token.Token
			var mine []apitypes.IssuedCertificate
			for i := range DeployReportsPerHourForTest + 1 {
				var c apitypes.IssuedCertificate
				in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
					CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), fmt.Sprintf("s%d.team.test", i))), Profile: "internal_service", ValidityDays: 30,
				}, &c)
				mine = append(mine, c)
			}
			var other apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "db.other.test")), Profile: "internal_service", ValidityDays: 30,
			}, &other)

			report := func(f apitypes.DeployFailure) tResp {
				return in.raw("POST", "/api/v1/alerts/deploy-failed", agentAuth, strings.NewReader(tJSON(t, f)))
			}
			ok := apitypes.DeployFailure{Entry: "web", Host: "web-1.team.test", Serial: mine[0].Serial, Error: "reload failed"}
			for _, tc := range []struct {
				name string
				f    apitypes.DeployFailure
				want int
			}{
				{"no serial", apitypes.DeployFailure{Entry: "web", Host: "web-1", Error: "x"}, http.StatusBadRequest},
				{"unknown serial", apitypes.DeployFailure{Entry: "web", Host: "web-1", Serial: "01ab", Error: "x"}, http.StatusNotFound},
				{"serial out of scope", apitypes.DeployFailure{Entry: "web", Host: "web-1", Serial: other.Serial, Error: "x"}, http.StatusForbidden},
				{"host with a newline", apitypes.DeployFailure{Entry: "web", Host: "web-1\nSubject: pwned", Serial: mine[0].Serial, Error: "x"}, http.StatusBadRequest},
				{"entry with an escape", apitypes.DeployFailure{Entry: "web\x1b[2J", Host: "web-1", Serial: mine[0].Serial, Error: "x"}, http.StatusBadRequest},
				{"entry too long", apitypes.DeployFailure{Entry: strings.Repeat("e", 129), Host: "web-1", Serial: mine[0].Serial, Error: "x"}, http.StatusBadRequest},
			} {
				if r := report(tc.f); r.status != tc.want {
					t.Errorf("%s: %d %s, want %d", tc.name, r.status, tTrim(r.body), tc.want)
				}
			}
			if n := tDeployAlerts(t, in); len(n) != 0 {
				t.Fatalf("refused reports raised %d alerts", len(n))
			}

			// Accepted: the text is cleaned and capped, the alert attributed.
			f := ok
			f.Error = "reload failed\r\nSubject: URGENT wire money\x1b[31m\u202e" + strings.Repeat("A", 5000)
			if r := report(f); r.status != http.StatusAccepted {
				t.Fatalf("report in scope: %d %s", r.status, tTrim(r.body))
			}
			alerts := tDeployAlerts(t, in)
			if len(alerts) != 1 {
				t.Fatalf("%d deploy_failed alerts, want 1", len(alerts))
			}
			a := alerts[0]
			if a.Serial != mine[0].Serial || !strings.HasPrefix(a.Subject, "deploy:") || !strings.HasSuffix(a.Subject, "/"+mine[0].Serial) ||
				strings.Contains(a.Subject, "web-1") || !strings.Contains(a.Summary, "team-agent") {
				t.Errorf("alert subject %q summary %q: want the principal and the certificate", a.Subject, a.Summary)
			}
			if strings.ContainsAny(a.Detail, "\r\n\x1b\u202e") || len(a.Detail) > 1600 || !strings.Contains(a.Detail, "...") {
				t.Errorf("alert detail not cleaned and capped (%d bytes): %q", len(a.Detail), a.Detail)
			}

			// One per principal and certificate every 10 minutes.
			if r := report(ok); r.status != http.StatusTooManyRequests {
				t.Errorf("second report within 10 minutes: %d %s, want 429", r.status, tTrim(r.body))
			}
			clk.Advance(10 * time.Minute)
			if r := report(ok); r.status != http.StatusAccepted {
				t.Errorf("report after 10 minutes: %d %s", r.status, tTrim(r.body))
			}
			// At most 20 an hour per principal, whatever the certificate.
			accepted := 2
			for _, c := range mine[1:] {
				f := ok
				f.Serial = c.Serial
				r := report(f)
				if accepted < DeployReportsPerHourForTest {
					if r.status != http.StatusAccepted {
						t.Fatalf("report %d: %d %s", accepted+1, r.status, tTrim(r.body))
					}
					accepted++
					continue
				}
				if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "last hour") {
					t.Errorf("report %d in the hour: %d %s, want 429", accepted+1, r.status, tTrim(r.body))
				}
			}
			if n := len(tDeployAlerts(t, in)); n != DeployReportsPerHourForTest {
				t.Errorf("%d alerts, want %d", n, DeployReportsPerHourForTest)
			}
			clk.Advance(61 * time.Minute)
			f = ok
			f.Serial = mine[len(mine)-1].Serial
			if r := report(f); r.status != http.StatusAccepted {
				t.Errorf("report after the hour: %d %s", r.status, tTrim(r.body))
			}

			// Every alert raised is audited, attributed to the reporter.
			audited := 0
			if err := in.app.store.EachAuditEvent(context.Background(), 0, func(ev *audit.Event) error {
				if ev.Action == "alert.deploy_failed" && ev.Outcome == audit.Success {
					audited++
					if ev.Principal != "team-agent" {
						t.Errorf("audit event by %q", ev.Principal)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if audited != DeployReportsPerHourForTest+1 {
				t.Errorf("%d alert.deploy_failed audit events, want %d", audited, DeployReportsPerHourForTest+1)
			}
		})
	}
}

// DeployReportsPerHourForTest is lifecycle.DeployReportsPerHour.
const DeployReportsPerHourForTest = lifecycle.DeployReportsPerHour

// tDeployAlerts lists the deploy_failed alerts.
func tDeployAlerts(t *testing.T, in *tInstance) []apitypes.Alert {
	t.Helper()
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts?limit=1000", nil, &list)
	var out []apitypes.Alert
	for _, a := range list.Alerts {
		if a.Kind == "deploy_failed" {
			out = append(out, a)
		}
	}
	return out
}

// TestRotatedServerCertReachesOtherReplicas: a replica that did not run
// the rotation notices the replaced server certificate (the minute check)
// and serves the new one.
func TestRotatedServerCertReachesOtherReplicas(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			a := tStart(t, cfg, clk)
			b := tStart(t, cfg, clk)
			a.tUseMachineAdmin(t)
			before, _ := tServedChain(t, b)
			a.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{CA: "issuing", Grace: "1h"}, nil)
			ctx := context.Background()
			// The rotation job runs (here, or on B under its lease) until
			// it has replaced the server certificate: a pass may leave
			// that item for the next.
			for deadline := time.Now().Add(30 * time.Second); ; {
				tRunJob(t, a, "rotation")
				v, err := a.app.store.GetSetting(ctx, settingServerTLS)
				if err != nil {
					t.Fatal(err)
				}
				if string(v) != tSerialHex(before) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the rotation has not replaced the server certificate %s after 30s", tSerialHex(before))
				}
				time.Sleep(200 * time.Millisecond)
			}
			// Either replica's scheduler may have advanced the rotation (both
			// run the job): the one that did serves the new certificate at
			// once; the other must notice that it serves a replaced one.
			setting := func() string {
				v, err := a.app.store.GetSetting(ctx, settingServerTLS)
				if err != nil {
					t.Fatal(err)
				}
				return string(v)
			}
			for _, r := range []*tInstance{a, b} {
				// The stored certificate is read on both sides of the
				// check: the rotation job, run by either replica, may
				// replace it meanwhile, which is not a miss.
				served, _ := tServedChain(t, r)
				stored := setting()
				replaced := r.app.tls.replaced(ctx)
				if tSerialHex(served) != stored && !replaced && setting() == stored {
					t.Fatalf("a replica serving %s does not notice the stored server certificate %s replaced it", tSerialHex(served), stored)
				}
				stored = setting()
				if err := r.app.tls.refresh(ctx, false); err != nil {
					t.Fatal(err)
				}
				if r.app.tls.replaced(ctx) && setting() == stored {
					t.Error("still reported replaced after the refresh")
				}
			}
			// Both replicas end up serving the stored certificate once
			// the rotation has settled.
			var onA, onB *x509.Certificate
			for try := 0; ; try++ {
				stored := setting()
				for _, r := range []*tInstance{a, b} {
					if err := r.app.tls.refresh(ctx, false); err != nil {
						t.Fatal(err)
					}
				}
				onA, _ = tServedChain(t, a)
				onB, _ = tServedChain(t, b)
				if onB.SerialNumber.Cmp(before.SerialNumber) != 0 && onB.SerialNumber.Cmp(onA.SerialNumber) == 0 && tSerialHex(onB) == stored && setting() == stored {
					break
				}
				if try == 50 {
					t.Fatalf("replica B serves %s (before %s), replica A %s, stored %s", tSerialHex(onB), tSerialHex(before), tSerialHex(onA), stored)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
