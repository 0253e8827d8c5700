package estapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/est"
)

// core answers as the est service would: err when set, else a
// certificate (and a key for serverkeygen). It records the last request.
type core struct {
	err  error
	leaf *x509.Certificate
	key  *ecdsa.PrivateKey
	last est.Request
}

func (c *core) CACerts(context.Context, string) ([]*x509.Certificate, error) {
	if c.err != nil {
		return nil, c.err
	}
	return []*x509.Certificate{c.leaf}, nil
}

func (c *core) CSRAttrs(context.Context, string) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	return []byte{0x30, 0x00}, nil
}

func (c *core) Enrol(_ context.Context, req est.Request) (*est.Result, error) {
	c.last = req
	if c.err != nil {
		return nil, c.err
	}
	return &est.Result{Leaf: c.leaf, Key: c.key}, nil
}

func newCore(t *testing.T) *core {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dev"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &core{leaf: leaf, key: key}
}

func serve(t *testing.T, c *core, method, path, ctype, body string, hdr ...string) *http.Response {
	t.Helper()
	h, err := New(Deps{Log: slog.New(slog.DiscardHandler), Service: c})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func text(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStatuses: each core error becomes its status as plain text, 401
// with WWW-Authenticate, 429 with a Retry-After the text agrees with.
func TestStatuses(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("%w: bad", est.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("%w: who", est.ErrUnauthenticated), http.StatusUnauthorized},
		{fmt.Errorf("%w: no", est.ErrRefused), http.StatusForbidden},
		{fmt.Errorf("%w: none", est.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("%w: slow down", est.ErrRateLimited), http.StatusTooManyRequests},
		{fmt.Errorf("database on fire"), http.StatusInternalServerError},
	} {
		co := newCore(t)
		co.err = c.err
		r := serve(t, co, "POST", "/.well-known/est/fleet/simpleenroll", "application/pkcs10", "QUJD")
		body := text(t, r)
		if r.StatusCode != c.status || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%v: %d %q, want %d as text/plain", c.err, r.StatusCode, r.Header.Get("Content-Type"), c.status)
		}
		if got := r.Header.Get("WWW-Authenticate"); (c.status == http.StatusUnauthorized) != strings.HasPrefix(got, "Basic ") {
			t.Errorf("%d: WWW-Authenticate %q", c.status, got)
		}
		if c.status == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("429: Retry-After %q", r.Header.Get("Retry-After"))
			}
		}
		if c.status == http.StatusInternalServerError && strings.Contains(body, "fire") {
			t.Errorf("500 echoes the internal error: %q", body)
		}
	}
}

// TestRequests: routing, methods, media types, size limit, and what the
// edge hands the core.
func TestRequests(t *testing.T) {
	co := newCore(t)
	if r := serve(t, co, "GET", "/.well-known/est/fleet/nothing", "", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown operation: %d", r.StatusCode)
	}
	if r := serve(t, co, "GET", "/.well-known/est/a/b/cacerts", "", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("too deep a path: %d", r.StatusCode)
	}
	if r := serve(t, co, "GET", "/.well-known/est/fleet/simpleenroll", "", ""); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET simpleenroll: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := serve(t, co, "POST", "/.well-known/est/fleet/cacerts", "", ""); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET" {
		t.Errorf("POST cacerts: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := serve(t, co, "POST", "/.well-known/est/fleet/simpleenroll", "application/json", "{}"); r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body: %d, want 415", r.StatusCode)
	}
	if r := serve(t, co, "POST", "/.well-known/est/fleet/simpleenroll", "application/pkcs10", strings.Repeat("A", est.MaxBody+1)); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", r.StatusCode)
	}
	for _, c := range []struct{ path, typ string }{
		{"/.well-known/est/fleet/cacerts", "application/pkcs7-mime; smime-type=certs-only"},
		{"/.well-known/est/cacerts", "application/pkcs7-mime; smime-type=certs-only"},
		{"/.well-known/est/fleet/csrattrs", "application/csrattrs"},
	} {
		r := serve(t, co, "GET", c.path, "", "")
		body := text(t, r)
		if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != c.typ || r.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("%s: %d %q", c.path, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if _, err := est.DecodeBody([]byte(body)); err != nil {
			t.Errorf("%s: body is not base64: %v", c.path, err)
		}
	}
	// The body goes to the core as sent (it decodes after authentication),
	// with Basic credentials; other schemes are no credential.
	r := serve(t, co, "POST", "/.well-known/est/fleet/simpleenroll", "application/pkcs10", "not base64 !!", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("dev:pw")))
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != typeCertsOnly {
		t.Errorf("simpleenroll: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if string(co.last.Body) != "not base64 !!" || !co.last.HasBasic || co.last.BasicUser != "dev" || co.last.BasicPwd != "pw" || co.last.Provisioner != "fleet" || co.last.RequestID == "" {
		t.Errorf("request handed to the core: %+v", co.last)
	}
	serve(t, co, "POST", "/.well-known/est/fleet/simpleenroll", "application/pkcs10", "QUJD", "Authorization", "Bearer x")
	if co.last.HasBasic {
		t.Error("a Bearer header was taken as Basic credentials")
	}
	// serverkeygen: multipart/mixed, the PKCS#8 key and the certificate, not cached.
	r = serve(t, co, "POST", "/.well-known/est/fleet/serverkeygen", "application/pkcs10", "QUJD")
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("serverkeygen: %q %q", r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		types = append(types, p.Header.Get("Content-Type"))
	}
	if strings.Join(types, ",") != typePKCS8+","+typeCertsOnly {
		t.Errorf("serverkeygen parts: %v", types)
	}
}
