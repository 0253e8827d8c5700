package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testOptions keep the loopback tests quick.
func testOptions() Options {
	return Options{BannerTimeout: 150 * time.Millisecond, IOTimeout: 3 * time.Second}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serverTLS is a self-signed certificate for the fake servers' TLS side.
func serverTLS(t *testing.T, alpn ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake.test"}, DNSNames: []string{"fake.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: alpn}
}

// serve runs handle for every connection to a loopback listener until the
// test ends.
func serve(t *testing.T, handle func(f *fake)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				handle(&fake{Conn: c, r: bufio.NewReader(c)})
			}()
		}
	}()
	return ln.Addr().String()
}

// fake is the server side of one test connection.
type fake struct {
	net.Conn
	r *bufio.Reader
}

func (f *fake) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *fake) send(s string) { _, _ = f.Conn.Write([]byte(s)) }

func (f *fake) line() (string, bool) {
	l, err := f.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimRight(l, "\r\n"), true
}

// verb returns the line's first word, upper-cased, and the line.
func (f *fake) verb() (string, string, bool) {
	l, ok := f.line()
	if !ok {
		return "", "", false
	}
	w, _, _ := strings.Cut(l, " ")
	return strings.ToUpper(w), l, true
}

// startTLS runs the server side of a TLS handshake over the connection.
func (f *fake) startTLS(cfg *tls.Config) {
	tc := tls.Server(f, cfg)
	if tc.Handshake() == nil {
		_, _ = io.Copy(io.Discard, tc)
	}
}

// assertUpgrade proves the dialer leaves the connection where a
// ClientHello goes next: a crypto/tls client handshake must succeed on it.
func assertUpgrade(t *testing.T, r *Result) {
	t.Helper()
	if r.TLSDialer == nil {
		t.Fatal("TLSDialer is nil, want a dialer")
	}
	ctx := testContext(t)
	conn, err := r.TLSDialer(ctx)
	if err != nil {
		t.Fatalf("TLSDialer: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the fake's self-signed certificate
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS handshake over the upgraded connection: %v", err)
	}
}

func codes(r *Result) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Code)
	}
	slices.Sort(out)
	return out
}

// want is what a detection must produce.
type want struct {
	proto  string
	enc    Encryption
	codes  []string
	dialer bool
}

func check(t *testing.T, r *Result, w want) {
	t.Helper()
	if r.Protocol != w.proto || r.Encryption != w.enc {
		t.Errorf("got protocol %q encryption %q, want %q %q (findings %+v)", r.Protocol, r.Encryption, w.proto, w.enc, r.Findings)
	}
	wc := slices.Clone(w.codes)
	slices.Sort(wc)
	if got := codes(r); !slices.Equal(got, wc) {
		t.Errorf("finding codes %v, want %v (findings %+v)", got, wc, r.Findings)
	}
	if (r.TLSDialer != nil) != w.dialer {
		t.Errorf("TLSDialer set = %v, want %v", r.TLSDialer != nil, w.dialer)
	}
	for _, f := range r.Findings {
		if !printable(f.Message) {
			t.Errorf("finding message %q holds non-printable bytes", f.Message)
		}
	}
	if r.Connections < 1 || r.Connections > defaultMaxConnections {
		t.Errorf("used %d connections, want 1..%d", r.Connections, defaultMaxConnections)
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// memConn is a net.Conn that serves fixed bytes and swallows writes, for
// fuzzing the handlers without a network.
type memConn struct{ r *bytes.Reader }

func (c memConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (memConn) Close() error                     { return nil }
func (memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (memConn) SetDeadline(time.Time) error      { return nil }
func (memConn) SetReadDeadline(time.Time) error  { return nil }
func (memConn) SetWriteDeadline(time.Time) error { return nil }

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
