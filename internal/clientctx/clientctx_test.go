package clientctx

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	der := []byte("a certificate")
	want := FingerprintOf(der)
	colons := want.String()
	plain := strings.ToLower(strings.ReplaceAll(colons, ":", ""))
	for _, in := range []string{colons, strings.ToLower(colons), plain, strings.ToUpper(plain), "SHA256:" + plain,
		"sha256:" + colons, "SHA-256:" + colons, "  " + colons + "\n", "sha256 Fingerprint=" + colons, "SHA256 Fingerprint=" + colons} {
		got, err := ParseFingerprint(in)
		if err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", plain[:62], plain + "00", plain[:63] + "g", "md5:" + plain, colons[:len(colons)-3], "SHA1:" + plain, "sha1 Fingerprint=" + colons} {
		if got, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "64 hex digits") && !strings.Contains(err.Error(), "not a SHA-256") {
			t.Errorf("ParseFingerprint(%q) error %q does not say what is expected", in, err)
		}
	}
}

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func create(t *testing.T, tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newRoot(t *testing.T, cn string) *testCA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &testCA{cert: create(t, tmpl, tmpl, k.Public(), k), key: k}
}

// serverCert is a TLS certificate for host, issued by ca (self-signed when ca is nil).
func serverCert(t *testing.T, ca *testCA, host string) tls.Certificate {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	parent, signer := tmpl, crypto.Signer(k)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	leaf := create(t, tmpl, parent, k.Public(), signer)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: k, Leaf: leaf}
}

// serve starts a TLS server on 127.0.0.1 with cert that serves roots at /roots.pem.
func serve(t *testing.T, cert tls.Certificate, roots ...*x509.Certificate) *url.URL {
	t.Helper()
	var ders [][]byte
	for _, r := range roots {
		ders = append(ders, r.Raw)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != RootsPath || r.Header.Get("Authorization") != "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(pki.CertPEM(ders...))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestFetchRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := newRoot(t, "Real Root")
	other := newRoot(t, "Other Root")
	good := serve(t, serverCert(t, root, "127.0.0.1"), root.cert)

	t.Run("pinned root", func(t *testing.T) {
		got, err := FetchRoot(ctx, good, FingerprintOf(root.cert.Raw))
		if err != nil || !got.Equal(root.cert) {
			t.Fatalf("FetchRoot = %v, %v; want the real root", got, err)
		}
	})
	t.Run("wrong fingerprint names both", func(t *testing.T) {
		_, err := FetchRoot(ctx, good, FingerprintOf(other.cert.Raw))
		var mm *MismatchError
		if !errors.As(err, &mm) {
			t.Fatalf("err = %v, want a *MismatchError", err)
		}
		for _, want := range []string{FingerprintOf(other.cert.Raw).String(), FingerprintOf(root.cert.Raw).String()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not show fingerprint %s", err, want)
			}
		}
	})
	t.Run("the leaf's fingerprint is not a root", func(t *testing.T) {
		leaf := serverCert(t, root, "127.0.0.1")
		u := serve(t, leaf, root.cert)
		_, err := FetchRoot(ctx, u, FingerprintOf(leaf.Leaf.Raw))
		if err == nil || !strings.Contains(err.Error(), "not a self-signed CA") {
			t.Fatalf("err = %v, want a refusal naming a non-CA certificate", err)
		}
	})
	// Someone in between serves the real (public) root but cannot present
	// a certificate that chains to it.
	t.Run("impostor serving the real root", func(t *testing.T) {
		u := serve(t, serverCert(t, nil, "127.0.0.1"), root.cert)
		_, err := FetchRoot(ctx, u, FingerprintOf(root.cert.Raw))
		if err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("err = %v, want the TLS chain refused", err)
		}
		u = serve(t, serverCert(t, other, "127.0.0.1"), root.cert, other.cert)
		if _, err := FetchRoot(ctx, u, FingerprintOf(root.cert.Raw)); err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("err = %v, want the TLS chain of another CA refused", err)
		}
	})
	t.Run("certificate for another host", func(t *testing.T) {
		u := serve(t, serverCert(t, root, "pki.example.internal"), root.cert)
		_, err := FetchRoot(ctx, u, FingerprintOf(root.cert.Raw))
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want a host name error", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := FetchRoot(ctx, &url.URL{Scheme: "https", Host: addr}, FingerprintOf(root.cert.Raw)); err == nil {
			t.Fatal("FetchRoot from a closed port succeeded")
		}
	})
}

func TestStore(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir, err := Dir(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": base, "HOME": "/nonexistent"}[k] })
	if err != nil || dir != filepath.Join(base, "certwright") {
		t.Fatalf("Dir = %q, %v", dir, err)
	}
	if d, _ := Dir(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": "relative", "HOME": "/home/u"}[k] }); d != "/home/u/.config/certwright" {
		t.Errorf("Dir with a relative XDG_CONFIG_HOME = %q, want the HOME default", d)
	}
	if _, err := Dir(func(string) string { return "" }); !errors.Is(err, ErrNoHome) {
		t.Errorf("Dir without HOME: %v", err)
	}
	st := Open(dir)
	root := newRoot(t, "Root")
	if names, err := st.Names(); err != nil || len(names) != 0 {
		t.Fatalf("empty store: %v, %v", names, err)
	}
	if err := st.Save(Context{Name: "prod", Server: "https://pki:8443"}, root.cert.Raw, "cwt_secret", true); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(Context{Name: "lab", Server: "https://lab:8443", ClientCert: "/c.pem", ClientKey: "/k.pem"}, root.cert.Raw, "", false); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "contexts"): 0o700,
		filepath.Join(dir, "contexts", "prod"): 0o700, filepath.Join(dir, "contexts", "prod", TokenFile): 0o600,
		filepath.Join(dir, "contexts", "prod", metaFile): 0o600, filepath.Join(dir, configFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v; want %04o", path, err, fi.Mode().Perm(), want)
		}
	}
	if cur, err := st.Current(); err != nil || cur != "prod" {
		t.Errorf("current %q, %v; want prod", cur, err)
	}
	p, err := st.Load("prod")
	if err != nil || p.Server != "https://pki:8443" || p.TokenPath == "" {
		t.Fatalf("Load(prod) = %+v, %v", p, err)
	}
	if tok, _ := os.ReadFile(p.TokenPath); strings.TrimSpace(string(tok)) != "cwt_secret" {
		t.Errorf("token file holds %q", tok)
	}
	if rootPEM, _ := os.ReadFile(p.RootPath); !strings.Contains(string(rootPEM), "BEGIN CERTIFICATE") {
		t.Errorf("root file holds %q", rootPEM)
	}
	l, err := st.Load("lab")
	if err != nil || l.TokenPath != "" || l.ClientCert != "/c.pem" {
		t.Errorf("Load(lab) = %+v, %v; want no token and the client certificate", l, err)
	}
	// Saving again replaces the whole context: the token goes.
	if err := st.Save(Context{Name: "prod", Server: "https://pki2:8443"}, root.cert.Raw, "", false); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Load("prod"); err != nil || p.Server != "https://pki2:8443" || p.TokenPath != "" {
		t.Errorf("replaced prod = %+v, %v", p, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "contexts")); len(entries) != 2 {
		t.Errorf("contexts directory holds %d entries after a replace, want 2 (no staging left)", len(entries))
	}
	var nf *NotFoundError
	if _, err := st.Load("nope"); !errors.As(err, &nf) || !strings.Contains(err.Error(), "lab, prod") {
		t.Errorf("Load(nope) = %v, want NotFoundError listing lab, prod", err)
	}
	if err := st.Use("nope"); !errors.As(err, &nf) {
		t.Errorf("Use(nope) = %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 64), "sp ace"} {
		if err := st.Save(Context{Name: bad, Server: "https://x"}, root.cert.Raw, "t", false); err == nil {
			t.Errorf("Save(%q) succeeded", bad)
		}
		if _, err := st.Load(bad); err == nil {
			t.Errorf("Load(%q) succeeded", bad)
		}
	}
	if err := st.Use("lab"); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove("lab"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := st.Current(); cur != "" {
		t.Errorf("current after removing it: %q", cur)
	}
	if names, _ := st.Names(); len(names) != 1 || names[0] != "prod" {
		t.Errorf("names after remove: %v", names)
	}
}
