package app

import (
	"context"
	"crypto/elliptic"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store/storetest"
)

// tProxy is a loopback TCP proxy between an instance and its PostgreSQL
// server that a test can stall (connections accepted, nothing forwarded:
// a hung database) or cut (connections dropped and refused: a stopped
// one), and then let through again. The shared server itself is never
// touched.
type tProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  string        // "forward", "stall" or "cut"
	open  chan struct{} // closed while forwarding
	conns map[net.Conn]bool
}

func tNewProxy(t *testing.T, target string) *tProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tProxy{t: t, ln: ln, target: target, mode: "forward", open: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.open)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.dropAll()
	})
	return p
}

func (p *tProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		if mode == "cut" {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = true
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve connects c to the target once forwarding is allowed, then copies
// both ways, each chunk waiting while the proxy is stalled.
func (p *tProxy) serve(c net.Conn) {
	defer c.Close()
	if !p.wait(c) {
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[s] = true
	p.mu.Unlock()
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(s, c); done <- struct{}{} }()
	go func() { p.pipe(c, s); done <- struct{}{} }()
	<-done
}

// wait blocks while the proxy is stalled; false when c was dropped.
func (p *tProxy) wait(c net.Conn) bool {
	for range 600 { // bounded: a minute
		p.mu.Lock()
		open, live := p.open, p.conns[c]
		p.mu.Unlock()
		if !live {
			return false
		}
		select {
		case <-open:
			return true
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func (p *tProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(src) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// stall stops forwarding; connections stay open and new ones are accepted.
func (p *tProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "forward" {
		p.open = make(chan struct{})
	}
	p.mode = "stall"
}

// cut drops every connection and refuses new ones.
func (p *tProxy) cut() {
	p.mu.Lock()
	p.mode = "cut"
	p.mu.Unlock()
	p.dropAll()
}

// forward lets traffic through again. Connections opened during a stall
// are dropped: their clients gave up long ago.
func (p *tProxy) forward() {
	p.dropAll()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != "forward" {
		if p.mode == "stall" {
			close(p.open)
		} else {
			select {
			case <-p.open:
			default:
				close(p.open)
			}
		}
	}
	p.mode = "forward"
}

func (p *tProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// tTimed sends one request and says how long the answer took.
func tTimed(t *testing.T, c *http.Client, method, u, auth string) (tResp, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tResp{status: resp.StatusCode, header: resp.Header, body: b}, time.Since(start)
}

// tProxiedPostgres is the configuration of a new instance on a fresh
// PostgreSQL schema reached through a proxy the test can stall or cut,
// skipping t without PostgreSQL.
func tProxiedPostgres(t *testing.T) (*config.Config, *tProxy) {
	t.Helper()
	base := os.Getenv(tEnvPostgres)
	if base == "" {
		t.Skip("set " + tEnvPostgres + "=postgres://... to run this test on PostgreSQL")
	}
	u, err := url.Parse(storetest.PostgresSchema(t, base))
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	proxy := tNewProxy(t, net.JoinHostPort(u.Hostname(), port))
	u.Host = proxy.ln.Addr().String()
	return tConfig(t, u.String()), proxy
}

// TestPostgresOutage is the acceptance of issue 14 #9: with PostgreSQL
// hung or stopped, API calls fail fast with 503 and Retry-After (the
// token check included, which refuses nobody and audits no denial),
// /healthz says degraded within a second, OCSP and CRLs are still served
// from memory, and everything recovers when the database comes back.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	cfg, proxy := tProxiedPostgres(t)
	cfg.StoreTimeout = "1s"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})

	// Warm up: a certificate whose OCSP response and CRL are in memory.
	c := in.sign(tCSR(t, tECKey(t, elliptic.P256()), "outage.example"))
	leaf, issuer := tPEMCert(t, c.CertificatePEM), tPEMCert(t, c.ChainPEM)
	if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
		t.Fatalf("OCSP before the outage: %d", s)
	}
	crlURL, err := url.Parse(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if r, _ := tTimed(t, plain, "GET", in.l.HTTPURL+crlURL.Path, ""); r.status != http.StatusOK {
		t.Fatalf("CRL before the outage: %d", r.status)
	}
	from := tAuditHead(t, in)

	check := func(what string) {
		t.Helper()
		r, took := tTimed(t, in.client, "GET", in.l.HTTPSURL+"/api/v1/certificates/"+c.Serial, in.bearer())
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: API answered %d (Retry-After %q): %s; want 503 with Retry-After", what, r.status, r.header.Get("Retry-After"), tTrim(r.body))
		}
		if took > 4*time.Second {
			t.Errorf("%s: API answered after %s; the store timeout is 1s", what, took)
		}
		// A health answer is at most a second old (healthCacheFor).
		time.Sleep(1100 * time.Millisecond)
		for _, path := range []string{"/healthz", "/readyz"} {
			r, took := tTimed(t, plain, "GET", in.l.HTTPURL+path, "")
			if r.status != http.StatusServiceUnavailable || took > 1200*time.Millisecond {
				t.Errorf("%s: %s answered %d after %s: %q; want 503 within a second", what, path, r.status, took, r.body)
			}
			if path == "/healthz" && !strings.HasPrefix(string(r.body), "degraded") {
				t.Errorf("%s: /healthz says %q, want degraded", what, r.body)
			}
		}
		if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
			t.Errorf("%s: OCSP status %d, want good from memory", what, s)
		}
		if r, took := tTimed(t, plain, "GET", in.l.HTTPURL+crlURL.Path, ""); r.status != http.StatusOK || took > 2*time.Second {
			t.Errorf("%s: CRL answered %d after %s, want 200 from memory", what, r.status, took)
		}
	}
	recovered := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			r, _ := tTimed(t, plain, "GET", in.l.HTTPURL+"/healthz", "")
			if r.status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz still %d %q 15s after the database came back", what, r.status, r.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// A pooled connection that died with the database fails the one
		// request that finds it dead (503, retryable), then is replaced.
		failed := 0
		for {
			r := in.call("GET", "/api/v1/certificates/"+c.Serial, nil)
			if r.status == http.StatusOK {
				break
			}
			failed++
			if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("%s: API after recovery: %d %s", what, r.status, tTrim(r.body))
			}
		}
		t.Logf("%s: %d requests answered 503 after /healthz said ok", what, failed)
	}

	// forward drops every connection, the notification listener's too.
	// Its new session drops the cached OCSP answers it cannot vouch for
	// (a resync: it may have missed revocations) before its first
	// catch-up; wait for that catch-up and serve the answer once from the
	// database, so that the cut below finds it in memory, as it would
	// after any pre-signing pass.
	listenerBack := func(what string, old uint32) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for in.app.store.ListenerPID() == old {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the notification listener did not reconnect within 15s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		seen := time.Now()
		for in.app.store.BusBehindFor() >= time.Since(seen) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the notification listener did not catch up within 15s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s := tOCSPStatus(t, in, leaf, issuer); s != ocsp.Good {
			t.Fatalf("%s: OCSP status %d, want good", what, s)
		}
	}

	pid := in.app.store.ListenerPID()
	proxy.stall()
	check("hung database")
	proxy.forward()
	recovered("after the stall")
	listenerBack("after the stall", pid)

	proxy.cut()
	check("stopped database")
	proxy.forward()
	recovered("after the cut")

	// Nobody was refused: no denial was audited or counted.
	if err := in.app.refusals.Flush(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	err = in.app.store.EachAuditEvent(context.Background(), from+1, func(ev *audit.Event) error {
		if ev.Outcome == audit.Denied {
			return errors.New("denied event " + ev.Action + " " + ev.Target + ": " + string(ev.Details))
		}
		return nil
	})
	if err != nil {
		t.Errorf("audit log after the outage: %v", err)
	}
}
