package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
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

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tPEMCert parses the first certificate of a PEM text.
func tPEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM block in %q", tTrim([]byte(s)))
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tOCSPStatus asks the instance's plain-HTTP responder, at the path the
// certificate names, about leaf (issued by issuer).
func tOCSPStatus(t *testing.T, in *tInstance, leaf, issuer *x509.Certificate) int {
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
	return r.Status
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
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
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
			if st, err := in.app.scheduler.RunJob(context.Background(), "renewal"); err != nil || st.Outcome != lifecycle.OutcomeOK {
				t.Fatalf("renewal run after restart = %+v, %v", st, err)
			}
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
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
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
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
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
			cfg := tConfig(t, be.dbURL(t))
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			tInit(t, cfg, clk)
			in := tStart(t, cfg, clk)
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
