package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
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
