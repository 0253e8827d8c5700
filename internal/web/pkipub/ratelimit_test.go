package pkipub_test

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/pkipub"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src, so one test can be several sources.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func limitedServer(t *testing.T, rate int, loopback bool) (*httptest.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0.Add(10 * time.Minute))
	h, err := pkipub.New(pkipub.Deps{
		CAs: fakeCAs{caID: {ID: caID, CertDER: []byte("ca-der")}}, Health: pkipub.NewHealth(fakeDB{}, slog.New(slog.DiscardHandler), time.Now),
		CRLs: &fakeCRLs{crls: map[string]*pkipub.CRL{caID: {
			DER: []byte("crl-der"), Number: big.NewInt(42), ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour)}}},
		OCSP:  &fakeOCSP{answer: pkipub.OCSPAnswer{DER: signedResponse, ThisUpdate: t0, NextUpdate: t0.Add(4 * time.Hour), Cacheable: true}},
		Clock: clk, Log: slog.New(slog.DiscardHandler),
		RatePerSecond: rate, RateLimitLoopback: loopback,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, clk
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRateLimitPerSource is issue 13 #16: each source gets a burst of twice
// the rate, then 429 with Retry-After; other sources are unaffected,
// /healthz never limited, and the bucket refills with time.
func TestRateLimitPerSource(t *testing.T) {
	t.Parallel()
	srv, clk := limitedServer(t, 5, true)
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	paths := []string{"/crl/" + caID + ".crl", "/ca/" + caID + ".crt", "/ocsp/" + caID + "/MAMCAQA="}
	for i := range 10 {
		if r := get(t, a, srv.URL+paths[i%len(paths)]); r.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	r := get(t, a, srv.URL+paths[0])
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d (Retry-After %q), want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := get(t, a, srv.URL+"/healthz"); r.StatusCode != http.StatusOK {
		t.Errorf("/healthz limited: %d", r.StatusCode)
	}
	if r := get(t, b, srv.URL+paths[0]); r.StatusCode != http.StatusOK {
		t.Errorf("another source: %d, want 200", r.StatusCode)
	}
	clk.Advance(time.Second)
	if r := get(t, a, srv.URL+paths[0]); r.StatusCode != http.StatusOK {
		t.Errorf("after a second: %d, want 200", r.StatusCode)
	}
}

// TestRateLimitDefaults: loopback peers are exempt unless asked, and a
// negative rate turns the limit off.
func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		rate     int
		loopback bool
	}{{"loopback exempt", 1, false}, {"off", -1, true}} {
		srv, _ := limitedServer(t, tt.rate, tt.loopback)
		c := clientFrom("127.0.0.1")
		for i := range 20 {
			if r := get(t, c, srv.URL+"/crl/"+caID+".crl"); r.StatusCode != http.StatusOK {
				t.Fatalf("%s: request %d: %d", tt.name, i, r.StatusCode)
			}
		}
	}
}
