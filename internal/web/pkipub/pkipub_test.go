package pkipub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/revoke/ocsp"
	"github.com/certwright/certwright/internal/web/pkipub"
)

const caID = "ca_0123456789abcdef"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeCAs map[string]*ca.CA

func (f fakeCAs) GetCA(_ context.Context, id string) (*ca.CA, error) {
	if c, ok := f[id]; ok {
		return c, nil
	}
	return nil, errors.New("no such CA")
}

type fakeDB struct{ err error }

func (f fakeDB) Ping(context.Context) error      { return f.err }
func (f fakeDB) CanCommit(context.Context) error { return f.err }

type fakeCRLs struct {
	crls map[string]*pkipub.CRL
	err  error
}

func (f *fakeCRLs) CRL(_ context.Context, id string) (*pkipub.CRL, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.crls[id], nil
}

// fakeOCSP records what reached the port and answers with a fixed response.
type fakeOCSP struct {
	mu     sync.Mutex
	ids    []string
	reqs   [][]byte
	answer pkipub.OCSPAnswer
}

func (f *fakeOCSP) Respond(_ context.Context, id string, req []byte) pkipub.OCSPAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, id)
	f.reqs = append(f.reqs, bytes.Clone(req))
	return f.answer
}

func (f *fakeOCSP) last(t *testing.T) (string, []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("nothing reached the OCSP port")
	}
	return f.ids[len(f.ids)-1], f.reqs[len(f.reqs)-1]
}

func (f *fakeOCSP) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

type env struct {
	clock *clock.Fake
	crls  *fakeCRLs
	ocsp  *fakeOCSP
	srv   *httptest.Server
	h     http.Handler
}

var signedResponse = []byte{0x30, 0x03, 0x0a, 0x01, 0x00, 0xde, 0xad} // opaque to the handler

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{
		clock: clock.NewFake(t0.Add(10 * time.Minute)),
		crls: &fakeCRLs{crls: map[string]*pkipub.CRL{caID: {
			DER: []byte("crl-der"), Number: big.NewInt(42), ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour),
		}}},
		ocsp: &fakeOCSP{answer: pkipub.OCSPAnswer{
			DER: signedResponse, ThisUpdate: t0, NextUpdate: t0.Add(4 * time.Hour), Cacheable: true,
		}},
	}
	h, err := pkipub.New(pkipub.Deps{
		CAs:    fakeCAs{caID: {ID: caID, CertDER: []byte("ca-der")}},
		Health: pkipub.NewHealth(fakeDB{}, slog.New(slog.DiscardHandler), time.Now),
		CRLs:   e.crls,
		OCSP:   e.ocsp,
		Clock:  e.clock,
		Log:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request over a real connection and never follows redirects,
// so a 301 from path cleaning shows up as a failure.
func (e *env) do(t *testing.T, method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}

func TestNewRequiresDeps(t *testing.T) {
	t.Parallel()
	if _, err := pkipub.New(pkipub.Deps{}); err == nil {
		t.Error("New accepted empty deps")
	}
}

func TestCACertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, body := e.do(t, "GET", "/ca/"+caID+".crt", nil, nil)
	if resp.StatusCode != 200 || string(body) != "ca-der" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Content-Type", "application/pkix-cert")
	wantHeader(t, resp, "Cache-Control", "public, max-age=3600")
	for _, p := range []string{"/ca/ca_missing.crt", "/ca/" + caID + ".pem", "/ca/other.crt", "/nothing"} {
		if resp, _ := e.do(t, "GET", p, nil, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if resp, body := e.do(t, "GET", "/healthz", nil, nil); resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	h := pkipub.NewHealth(fakeDB{err: errors.New("down")}, slog.New(slog.DiscardHandler), time.Now).Healthz()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("down store: %d", rec.Code)
	}
}

// TestHealthLogsOncePerOutage: anonymous callers polling /healthz while
// the store is down do not each add a log line: the outage is logged once.
func TestHealthLogsOncePerOutage(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := pkipub.NewHealth(fakeDB{err: errors.New("down")}, slog.New(slog.NewTextHandler(&logs, nil)), clk).Healthz()
	for i := range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
		mu.Lock()
		now = now.Add(2 * time.Second) // past the cache: every request probes again
		mu.Unlock()
	}
	if n := strings.Count(logs.String(), "cannot commit"); n != 1 {
		t.Errorf("%d log lines for one outage, want 1:\n%s", n, logs.String())
	}
}

func TestCRL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := "/crl/" + caID + ".crl"
	resp, body := e.do(t, "GET", path, nil, nil)
	if resp.StatusCode != 200 || string(body) != "crl-der" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Content-Type", "application/pkix-crl")
	wantHeader(t, resp, "ETag", `"2a"`)
	wantHeader(t, resp, "Last-Modified", "Sun, 01 Mar 2026 12:00:00 GMT")
	wantHeader(t, resp, "Expires", "Sun, 08 Mar 2026 12:00:00 GMT")
	wantHeader(t, resp, "Cache-Control", "public, max-age=3600, no-transform")
	wantHeader(t, resp, "Content-Length", "7")

	resp, body = e.do(t, "HEAD", path, nil, nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "Content-Length", "7")
	wantHeader(t, resp, "ETag", `"2a"`)

	conditional := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"etag", map[string]string{"If-None-Match": `"2a"`}, 304},
		{"etag list", map[string]string{"If-None-Match": `"1", W/"2a" , "3"`}, 304},
		{"weak etag", map[string]string{"If-None-Match": `W/"2a"`}, 304},
		{"star", map[string]string{"If-None-Match": `*`}, 304},
		{"other etag", map[string]string{"If-None-Match": `"29"`}, 200},
		{"unquoted etag", map[string]string{"If-None-Match": `2a`}, 200},
		{"modified since thisUpdate", map[string]string{"If-Modified-Since": "Sun, 01 Mar 2026 12:00:00 GMT"}, 304},
		{"modified since later", map[string]string{"If-Modified-Since": "Sun, 01 Mar 2026 13:00:00 GMT"}, 304},
		{"modified since earlier", map[string]string{"If-Modified-Since": "Sun, 01 Mar 2026 11:59:59 GMT"}, 200},
		{"bad date", map[string]string{"If-Modified-Since": "yesterday"}, 200},
		{"etag wins over date", map[string]string{"If-None-Match": `"29"`, "If-Modified-Since": "Sun, 01 Mar 2026 13:00:00 GMT"}, 200},
	}
	for _, c := range conditional {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do(t, "GET", path, c.hdr, nil)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 304 {
				if len(body) != 0 {
					t.Errorf("304 with body %q", body)
				}
				wantHeader(t, resp, "ETag", `"2a"`)
				wantHeader(t, resp, "Cache-Control", "public, max-age=3600, no-transform")
			}
		})
	}

	for _, c := range []struct {
		path, method string
		want         int
	}{
		{"/crl/ca_ffff.crl", "GET", 404},
		{"/crl/" + caID + ".pem", "GET", 404},
		{"/crl/other.crl", "GET", 404},
		{"/crl/" + caID + "/x.crl", "GET", 404},
		{path, "POST", 405},
		{path, "DELETE", 405},
	} {
		resp, _ := e.do(t, c.method, c.path, nil, nil)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
		if c.want == 405 {
			wantHeader(t, resp, "Allow", "GET, HEAD")
		}
		if c.want == 404 {
			wantHeader(t, resp, "Content-Type", "text/plain; charset=utf-8")
		}
	}
}

func TestCRLMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := "/crl/" + caID + ".crl"
	crl := e.crls.crls[caID]
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{crl.NextUpdate.Add(-30 * time.Minute), "public, max-age=1800, no-transform"},
		{crl.NextUpdate.Add(-1500 * time.Millisecond), "public, max-age=1, no-transform"},
		{crl.NextUpdate, "public, max-age=0, no-transform"},
		{crl.NextUpdate.Add(time.Hour), "public, max-age=0, no-transform"},
	} {
		e.clock.Set(c.now)
		resp, _ := e.do(t, "GET", path, nil, nil)
		wantHeader(t, resp, "Cache-Control", c.want)
	}
}

func TestCRLPortFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.crls.err = errors.New("store down")
	resp, _ := e.do(t, "GET", "/crl/"+caID+".crl", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d", resp.StatusCode)
	}
	wantHeader(t, resp, "Cache-Control", "no-store")
}

// Request bytes are opaque to the handler; these are chosen for their
// base64 text.
var (
	plusDER  = []byte{0x30, 0x08, 0xfe, 0xff, 0xff, 0xbe, 0xff, 0xff, 0x81, 0x02} // MAj+//++//+BAg==
	slashDER = []byte{0x30, 0x07, 0xff, 0xff, 0xff, 0xfb, 0xef, 0xbe, 0x01}       // MAf////7774B
)

func TestOCSPGetEncodings(t *testing.T) {
	t.Parallel()
	std := base64.StdEncoding.EncodeToString(plusDER)
	if !strings.Contains(std, "//") || !strings.Contains(std, "+") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test vector %q lacks '//', '+' or '='", std)
	}
	escapeAll := strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace
	cases := []struct{ name, enc string }{
		{"raw standard", std},
		{"percent-escaped", escapeAll(std)},
		{"lower-case escapes", strings.NewReplacer("/", "%2f", "+", "%2b", "=", "%3d").Replace(std)},
		{"partly escaped", strings.Replace(std, "+", "%2B", 1)},
		{"no padding", strings.TrimRight(std, "=")},
		{"url-safe", base64.URLEncoding.EncodeToString(plusDER)},
		{"url-safe no padding", base64.RawURLEncoding.EncodeToString(plusDER)},
		{"leading slash (base URL with trailing slash)", "/" + std},
	}
	e := newEnv(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do(t, "GET", "/ocsp/"+caID+"/"+c.enc, nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d (Location %q) %q", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if !bytes.Equal(body, signedResponse) {
				t.Errorf("body %x", body)
			}
			id, got := e.ocsp.last(t)
			if id != caID || !bytes.Equal(got, plusDER) {
				t.Errorf("port got %s % x, want %s % x", id, got, caID, plusDER)
			}
			wantHeader(t, resp, "Content-Type", "application/ocsp-response")
		})
	}
	// The slash-heavy vector too, raw: "//" inside and three '/' in a row.
	resp, _ := e.do(t, "GET", "/ocsp/"+caID+"/"+base64.StdEncoding.EncodeToString(slashDER), nil, nil)
	if _, got := e.ocsp.last(t); resp.StatusCode != 200 || !bytes.Equal(got, slashDER) {
		t.Errorf("slashes: %d % x", resp.StatusCode, got)
	}
}

// TestOCSPGetRawRequestLine writes request lines byte for byte, as OCSP
// clients do, without Go's client normalising anything.
func TestOCSPGetRawRequestLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	std := base64.StdEncoding.EncodeToString(plusDER)
	for _, c := range []struct {
		target string
		want   int
	}{
		{"/ocsp/" + caID + "/" + std, 200},
		{"/ocsp/" + caID + "//" + std, 200},
		{"/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(slashDER), 200},
		{"/ocsp/" + caID + "/MA%zz", 400}, // refused by net/http itself
	} {
		conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.WriteString(conn, "GET "+c.target+" HTTP/1.1\r\nHost: pki.example\r\nConnection: close\r\n\r\n")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.target, resp.StatusCode, c.want)
		}
	}
}

func TestOCSPGetCaching(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := "/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(plusDER)
	resp, _ := e.do(t, "GET", path, nil, nil)
	wantHeader(t, resp, "Cache-Control", "public, max-age=3600, no-transform, must-revalidate")
	wantHeader(t, resp, "Last-Modified", "Sun, 01 Mar 2026 12:00:00 GMT")
	wantHeader(t, resp, "Expires", "Sun, 01 Mar 2026 16:00:00 GMT")
	etag := resp.Header.Get("ETag")
	if len(etag) != 34 || etag[0] != '"' || etag[33] != '"' {
		t.Errorf("computed ETag %q", etag)
	}
	if resp2, _ := e.do(t, "GET", path, nil, nil); resp2.Header.Get("ETag") != etag {
		t.Error("ETag is not stable")
	}

	resp, body := e.do(t, "GET", path, map[string]string{"If-None-Match": etag}, nil)
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Errorf("If-None-Match: %d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "ETag", etag)
	wantHeader(t, resp, "Cache-Control", "public, max-age=3600, no-transform, must-revalidate")
	// Dates do not validate OCSP responses: two signed in one second share one.
	if resp, _ := e.do(t, "GET", path, map[string]string{"If-Modified-Since": "Sun, 01 Mar 2026 13:00:00 GMT"}, nil); resp.StatusCode != 200 {
		t.Errorf("If-Modified-Since: %d", resp.StatusCode)
	}

	resp, body = e.do(t, "HEAD", path, nil, nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	wantHeader(t, resp, "ETag", etag)

	// max-age follows nextUpdate once it is closer than the cap; never negative.
	for _, c := range []struct {
		now  time.Time
		want string
	}{
		{t0.Add(3*time.Hour + 20*time.Minute), "public, max-age=2400, no-transform, must-revalidate"},
		{t0.Add(5 * time.Hour), "public, max-age=0, no-transform, must-revalidate"},
	} {
		e.clock.Set(c.now)
		resp, _ := e.do(t, "GET", path, nil, nil)
		wantHeader(t, resp, "Cache-Control", c.want)
	}
}

func TestOCSPAnswerETagAndErrors(t *testing.T) {
	t.Parallel()
	path := "/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(plusDER)
	t.Run("precomputed etag", func(t *testing.T) {
		e := newEnv(t)
		e.ocsp.answer.ETag = `"abc"`
		resp, _ := e.do(t, "GET", path, nil, nil)
		wantHeader(t, resp, "ETag", `"abc"`)
		if resp, _ := e.do(t, "GET", path, map[string]string{"If-None-Match": `"abc"`}, nil); resp.StatusCode != 304 {
			t.Errorf("%d", resp.StatusCode)
		}
		e.ocsp.answer.ETag = "bare"
		resp, _ = e.do(t, "GET", path, nil, nil)
		wantHeader(t, resp, "ETag", `"bare"`)
	})
	t.Run("error answer", func(t *testing.T) {
		e := newEnv(t)
		e.ocsp.answer = pkipub.OCSPAnswer{DER: ocsp.ErrorResponse(ocsp.StatusMalformed)}
		resp, body := e.do(t, "GET", path, map[string]string{"If-None-Match": "*"}, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, ocsp.ErrorResponse(ocsp.StatusMalformed)) {
			t.Errorf("%d % x", resp.StatusCode, body)
		}
		wantHeader(t, resp, "Cache-Control", "no-store")
		wantHeader(t, resp, "ETag", "")
		wantHeader(t, resp, "Expires", "")
		wantHeader(t, resp, "Content-Type", "application/ocsp-response")
	})
	t.Run("empty answer", func(t *testing.T) {
		e := newEnv(t)
		e.ocsp.answer = pkipub.OCSPAnswer{Cacheable: true}
		resp, body := e.do(t, "GET", path, nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, ocsp.ErrorResponse(ocsp.StatusInternalError)) {
			t.Errorf("%d % x", resp.StatusCode, body)
		}
		wantHeader(t, resp, "Cache-Control", "no-store")
	})
}

func TestOCSPTransportErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := base64.StdEncoding.EncodeToString(append([]byte{0x30}, make([]byte, ocsp.MaxRequestBytes)...))
	cases := []struct {
		name, method, path string
		want               int
	}{
		{"no request", "GET", "/ocsp/" + caID, 400},
		{"empty request", "GET", "/ocsp/" + caID + "/", 400},
		{"only slashes", "GET", "/ocsp/" + caID + "///", 400},
		{"not base64", "GET", "/ocsp/" + caID + "/M!!!", 400},
		{"mixed alphabets", "GET", "/ocsp/" + caID + "/MA+_", 400},
		{"too much padding", "GET", "/ocsp/" + caID + "/MAo===", 400},
		{"too long", "GET", "/ocsp/" + caID + "/" + long, 414},
		{"bad CA id", "GET", "/ocsp/not-a-ca/MAo=", 404},
		{"no CA id", "GET", "/ocsp//MAo=", 404},
		{"PUT", "PUT", "/ocsp/" + caID, 405},
		{"DELETE", "DELETE", "/ocsp/" + caID + "/MAo=", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := e.do(t, c.method, c.path, nil, nil)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			wantHeader(t, resp, "Content-Type", "text/plain; charset=utf-8")
			if c.want == 405 {
				wantHeader(t, resp, "Allow", "GET, HEAD, POST")
			}
		})
	}
	if n := e.ocsp.calls(); n != 0 {
		t.Errorf("%d transport failures reached the OCSP port", n)
	}
}

func TestOCSPPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ct := map[string]string{"Content-Type": "application/ocsp-request"}
	resp, body := e.do(t, "POST", "/ocsp/"+caID, ct, plusDER)
	if resp.StatusCode != 200 || !bytes.Equal(body, signedResponse) {
		t.Fatalf("%d %x", resp.StatusCode, body)
	}
	if id, got := e.ocsp.last(t); id != caID || !bytes.Equal(got, plusDER) {
		t.Errorf("port got %s % x", id, got)
	}
	wantHeader(t, resp, "Content-Type", "application/ocsp-response")
	wantHeader(t, resp, "Cache-Control", "")
	wantHeader(t, resp, "ETag", "")

	if resp, _ := e.do(t, "POST", "/ocsp/"+caID+"/", map[string]string{"Content-Type": "Application/OCSP-Request; x=y"}, plusDER); resp.StatusCode != 200 {
		t.Errorf("trailing slash, parameters: %d", resp.StatusCode)
	}
	exact := append([]byte{0x30}, make([]byte, ocsp.MaxRequestBytes-1)...)
	if resp, _ := e.do(t, "POST", "/ocsp/"+caID, ct, exact); resp.StatusCode != 200 {
		t.Errorf("request of exactly MaxRequestBytes: %d", resp.StatusCode)
	}
	if _, got := e.ocsp.last(t); len(got) != ocsp.MaxRequestBytes {
		t.Errorf("port got %d bytes", len(got))
	}

	before := e.ocsp.calls()
	cases := []struct {
		name, path string
		hdr        map[string]string
		body       []byte
		want       int
	}{
		{"no content type", "/ocsp/" + caID, nil, plusDER, 415},
		{"wrong content type", "/ocsp/" + caID, map[string]string{"Content-Type": "application/octet-stream"}, plusDER, 415},
		{"form", "/ocsp/" + caID, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, plusDER, 415},
		{"too large", "/ocsp/" + caID, ct, make([]byte, ocsp.MaxRequestBytes+1), 413},
		{"empty", "/ocsp/" + caID, ct, []byte{}, 400},
		{"extra path", "/ocsp/" + caID + "/x", ct, plusDER, 404},
		{"bad CA id", "/ocsp/ca_", ct, plusDER, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := e.do(t, "POST", c.path, c.hdr, c.body)
			if resp.StatusCode != c.want {
				t.Errorf("status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
	if n := e.ocsp.calls(); n != before {
		t.Errorf("%d refused requests reached the port", n-before)
	}
}

// TestOCSPPostChunkedTooLarge sends a body without Content-Length.
func TestOCSPPostChunkedTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		size int
		want int
	}{{ocsp.MaxRequestBytes + 1, 413}, {600, 200}, {ocsp.MaxRequestBytes, 200}} {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write(append([]byte{0x30}, make([]byte, c.size-1)...))
			pw.Close()
		}()
		req, err := http.NewRequest("POST", e.srv.URL+"/ocsp/"+caID, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/ocsp-request")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("chunked %d bytes: %d, want %d", c.size, resp.StatusCode, c.want)
		}
		if c.want == 200 {
			if _, got := e.ocsp.last(t); len(got) != c.size {
				t.Errorf("port got %d bytes, want %d", len(got), c.size)
			}
		}
	}
}

// FuzzOCSPGetPath: whatever follows /ocsp/ in a request line, the handler
// does not panic, answers 200 with the port's response after handing it a
// bounded non-empty request, or a 4xx, and never redirects.
func FuzzOCSPGetPath(f *testing.F) {
	std := base64.StdEncoding.EncodeToString(plusDER)
	for _, s := range []string{
		caID + "/" + std, caID + "//" + std, caID + "/" + url.PathEscape(std), caID + "/" + base64.RawURLEncoding.EncodeToString(plusDER),
		caID, caID + "/", "", "/", "ca_/MAo=", caID + "/%", caID + "/MA%2", caID + "/====", "../ca/" + caID + ".crt",
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.ParseRequestURI("/ocsp/" + s)
		if err != nil {
			return // net/http rejects it before any handler
		}
		before := e.ocsp.calls()
		r := &http.Request{Method: "GET", URL: u, Header: http.Header{}, RequestURI: "/ocsp/" + s}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r.WithContext(context.Background()))
		switch {
		case rec.Code == 200:
			if e.ocsp.calls() != before+1 || !bytes.Equal(rec.Body.Bytes(), signedResponse) {
				t.Fatalf("200 without the port's answer for %q", s)
			}
			_, got := e.ocsp.last(t)
			if len(got) == 0 || len(got) > ocsp.MaxRequestBytes {
				t.Fatalf("port got %d bytes for %q", len(got), s)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if e.ocsp.calls() != before {
				t.Fatalf("%d after reaching the port for %q", rec.Code, s)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, s)
		}
	})
}

// discardWriter is the cheapest ResponseWriter, to measure the handler alone.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// staticOCSP answers every request with one response, recording nothing.
type staticOCSP pkipub.OCSPAnswer

func (s staticOCSP) Respond(context.Context, string, []byte) pkipub.OCSPAnswer {
	return pkipub.OCSPAnswer(s)
}

// newBenchHandler serves a 500-byte response with a precomputed ETag, as
// the revoke service's cache does.
func newBenchHandler(b *testing.B) http.Handler {
	b.Helper()
	h, err := pkipub.New(pkipub.Deps{
		CAs: fakeCAs{}, Health: pkipub.NewHealth(fakeDB{}, slog.New(slog.DiscardHandler), time.Now), CRLs: &fakeCRLs{}, Clock: clock.NewFake(t0), Log: slog.New(slog.DiscardHandler),
		OCSP: staticOCSP{DER: make([]byte, 500), ETag: `"0123456789abcdef01234567"`, ThisUpdate: t0, NextUpdate: t0.Add(4 * time.Hour), Cacheable: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func BenchmarkOCSPGetHandler(b *testing.B) {
	h := newBenchHandler(b)
	for _, c := range []struct{ name, path string }{
		{"raw", "/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(plusDER)},
		{"escaped", "/ocsp/" + caID + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(plusDER))},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", c.path, nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkOCSPLoopback is the whole path over loopback with keep-alive
// clients: op = one OCSP GET answered; see the req/s metric.
func BenchmarkOCSPLoopback(b *testing.B) {
	srv := httptest.NewServer(newBenchHandler(b))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	path := srv.URL + "/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(plusDER)
	b.SetParallelism(16) // 32 clients on 2 CPUs
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(path)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Error("status " + strconv.Itoa(resp.StatusCode))
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// hungDB is a store that never answers before the caller's deadline.
type hungDB struct{}

func (hungDB) Ping(ctx context.Context) error      { <-ctx.Done(); return ctx.Err() }
func (hungDB) CanCommit(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

// TestHealthBoundedAndReady: /healthz says degraded within a second of a
// hung store; /readyz says ready only while serving and the store
// answers.
func TestHealthBoundedAndReady(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	get := func(h http.Handler) (*httptest.ResponseRecorder, time.Duration) {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec, time.Since(start)
	}
	hung := pkipub.NewHealth(hungDB{}, log, time.Now)
	for _, h := range []http.Handler{hung.Healthz(), hung.Readyz(func() string { return "" })} {
		rec, took := get(h)
		if rec.Code != http.StatusServiceUnavailable || took > 1100*time.Millisecond || rec.Header().Get("Retry-After") == "" {
			t.Errorf("hung store: %d after %s: %q", rec.Code, took, rec.Body)
		}
	}
	if rec, _ := get(hung.Healthz()); !strings.HasPrefix(rec.Body.String(), "degraded") {
		t.Errorf("hung store: /healthz says %q, want degraded", rec.Body)
	}
	ok := pkipub.NewHealth(fakeDB{}, log, time.Now)
	if rec, _ := get(ok.Readyz(func() string { return "" })); rec.Code != http.StatusOK || rec.Body.String() != "ready\n" {
		t.Errorf("serving: /readyz %d %q", rec.Code, rec.Body)
	}
	if rec, _ := get(ok.Readyz(func() string { return "draining" })); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "not ready: draining\n" {
		t.Errorf("not serving: /readyz %d %q", rec.Code, rec.Body)
	}
}
