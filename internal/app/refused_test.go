package app

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tClientFrom returns a client of in whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux).
func tClientFrom(in *tInstance, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: in.tlsConfig().Clone(), ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 16,
	}}
}

func tGet(t *testing.T, c *http.Client, url, auth string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestUnauthenticatedFloodIsBounded is finding 6 of issue 13: 2,000
// unauthenticated requests from one client leave a few audit events that
// count them, not 2,000 rows; past its burst the client gets 429 with
// Retry-After; a client at another address is served meanwhile.
func TestUnauthenticatedFloodIsBounded(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	ctx := context.Background()
	from := tAuditHead(t, in)

	const total = 2000
	flood := tClientFrom(in, "127.0.0.1")
	deadline := time.Now().Add(60 * time.Second)
	var next atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total && time.Now().Before(deadline) {
				code, h := tGet(t, flood, in.l.HTTPSURL+"/api/v1/cas", "Bearer cwt_0123456789abcdef_bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxsLXJlYWxseQ")
				mu.Lock()
				statuses[code]++
				if code == http.StatusTooManyRequests && retryAfter == "" {
					retryAfter = h.Get("Retry-After")
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != total {
		t.Fatalf("statuses %v: want %d answers, all 401 or 429 (within 60s)", statuses, total)
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Errorf("no 429 among %d refused requests from one source: %v", total, statuses)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("429 with Retry-After %q, want whole seconds", retryAfter)
	}
	// Another address is served meanwhile, with a token, or refused
	// normally without one.
	other := tClientFrom(in, "127.0.0.2")
	if code, _ := tGet(t, other, in.l.HTTPSURL+"/api/v1/cas", in.bearer()); code != http.StatusOK {
		t.Errorf("an authenticated request from 127.0.0.2 during the flood: %d, want 200", code)
	}
	if code, _ := tGet(t, other, in.l.HTTPSURL+"/api/v1/cas", ""); code != http.StatusUnauthorized {
		t.Errorf("an unauthenticated request from 127.0.0.2: %d, want 401", code)
	}
	flood.CloseIdleConnections()
	other.CloseIdleConnections()

	// Stopping writes the counts of the minute under way.
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, DBURL(in.cfg), tLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, anonRows int
	counts := map[string]int64{}
	err = db.EachAuditEvent(ctx, from+1, func(ev *audit.Event) error {
		rows++
		if ev.Principal != "anonymous" {
			return nil
		}
		anonRows++
		if ev.Action != "api.unauthenticated" {
			t.Errorf("anonymous event %s %s: want only api.unauthenticated", ev.Action, ev.Target)
		}
		var d struct {
			Count int64 `json:"count"`
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			return err
		}
		counts[ev.Source] += d.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One source and at most a minute boundary or two crossed: a few rows.
	if anonRows > 4 {
		t.Errorf("%d audit events for the refused requests, want at most 4", anonRows)
	}
	if counts["127.0.0.1"] != total || counts["127.0.0.2"] != 1 {
		t.Errorf("refusals counted per source %v, want 127.0.0.1: %d, 127.0.0.2: 1", counts, total)
	}
	t.Logf("%d requests -> %v; %d audit rows in all since the start, %d for the refusals", total, statuses, rows, anonRows)
}

// tSelfSignedClient returns a PEM client certificate (clientAuth) that no
// CA of any instance issued, with its key.
func tSelfSignedClient(t *testing.T) ([]byte, crypto.Signer) {
	t.Helper()
	k := tECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "intruder"},
		DNSNames:  []string{"intruder.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), k
}

// TestRefusalLimiterLetsValidCredentialsThrough: bad-token requests from
// one address (a NAT, a load balancer, a shared CI runner) use up that
// address's refusals, yet a valid token or client certificate from the
// same address is still served; only requests that fail their
// authentication (or bring none) get 429.
func TestRefusalLimiterLetsValidCredentialsThrough(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			// One refusal back per 100 s: the address stays over its
			// budget for the whole test.
			cfg := tConfig(t, be.dbURL(t))
			cfg.Audit.UnauthenticatedPerSecond = 0.01
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})
			const uri = "spiffe://example.internal/agent/nat-1"
			in.tCreatePrincipal(t, "nat-1", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, false)
			in.tAddIdentity(t, "nat-1", "uri", uri)
			key := tECKey(t, elliptic.P256())
			r, cert := in.tSignAs(t, in.bearer(), tCSRURI(t, key, "nat-1", uri))
			if r.status != http.StatusCreated {
				t.Fatalf("sign nat-1's client certificate: %d %s", r.status, tTrim(r.body))
			}
			good := in.tWithClientCert(t, []byte(cert.CertificatePEM+cert.ChainPEM), key)
			badPEM, badKey := tSelfSignedClient(t)
			bad := in.tWithClientCert(t, badPEM, badKey)

			// Every client here connects from 127.0.0.1.
			statuses := map[int]int{}
			for range 25 {
				statuses[in.raw("GET", "/api/v1/cas", "Bearer cwt_0123456789abcdef_bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxsLXJlYWxseQ", nil).status]++
			}
			if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 25 {
				t.Fatalf("25 bad-token requests: %v, want 401s then 429s", statuses)
			}
			if r := in.raw("GET", "/api/v1/cas", in.bearer(), nil); r.status != http.StatusOK {
				t.Errorf("valid admin token from the same address after the bad ones: %d %s, want 200", r.status, tTrim(r.body))
			}
			if st, name, _ := good.tWhoAmI(t); st != http.StatusOK || name != "nat-1" {
				t.Errorf("valid client certificate from the same address: %d as %q, want 200 as nat-1", st, name)
			}
			// Requests that fail stay limited: a bad token, none at all, an
			// unknown client certificate (twice on its connection).
			for what, r := range map[string]tResp{
				"bad token":              in.raw("GET", "/api/v1/cas", "Bearer cwt_fedcba9876543210_bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxsLXJlYWxseQ", nil),
				"malformed token":        in.raw("GET", "/api/v1/cas", "Bearer nope", nil),
				"no credentials":         in.raw("GET", "/api/v1/cas", "", nil),
				"unknown certificate":    bad.raw("GET", "/api/v1/whoami", "", nil),
				"unknown certificate #2": bad.raw("GET", "/api/v1/whoami", "", nil),
			} {
				if r.status != http.StatusTooManyRequests {
					t.Errorf("%s from the limited address: %d %s, want 429", what, r.status, tTrim(r.body))
				} else if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
					t.Errorf("%s: 429 with Retry-After %q, want whole seconds", what, r.header.Get("Retry-After"))
				}
			}
		})
	}
}
