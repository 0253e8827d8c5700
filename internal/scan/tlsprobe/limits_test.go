package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/scan/tlsprobe"
)

// startRawServer answers every connection with reply (after reading the
// ClientHello), or with nothing when reply is nil, and holds it open.
func startRawServer(t *testing.T, reply []byte) string {
	t.Helper()
	return tlsprobe.ServeLoopback(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		if reply != nil {
			_, _ = c.Write(reply)
		}
		_, _ = c.Read(buf) // until the prober hangs up
	})
}

func TestEnumerateSilentServer(t *testing.T) {
	t.Parallel()
	addr := startRawServer(t, nil)
	start := time.Now()
	rep, err := tlsprobe.Enumerate(context.Background(), tlsprobe.TCPDialer(addr), tlsprobe.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(offered(rep)) != 0 || rep.Connections != 5 {
		t.Errorf("offered %v with %d connections, want nothing with 5 (one per version)", offered(rep), rep.Connections)
	}
	if len(rep.Notes) != 5 || !strings.Contains(rep.Notes[0], "no answer within") {
		t.Errorf("notes = %q, want one 'no answer' per version", rep.Notes)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s: per-connection timeouts not applied", d)
	}
}

// A plaintext HTTP server on the port: the prober must say so without
// echoing more than a short, quoted piece of what it sent.
func TestEnumerateNotTLS(t *testing.T) {
	t.Parallel()
	body := "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n\x1b[31m<html>" + strings.Repeat("x", 5000)
	addr := startRawServer(t, []byte(body))
	rep, err := tlsprobe.Enumerate(context.Background(), tlsprobe.TCPDialer(addr), tlsprobe.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(offered(rep)) != 0 {
		t.Errorf("offered %v for an HTTP server", offered(rep))
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], `not a TLS record: "HTTP/"`) {
		t.Errorf("notes = %q, want a quoted 'not a TLS record'", rep.Notes)
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "\x1b") || strings.Contains(n, "\r\n") || len(n) > 200 {
			t.Errorf("note %q carries raw or long peer bytes", n)
		}
	}
}

func TestEnumerateConnectionLimit(t *testing.T) {
	t.Parallel()
	pki := tlsprobe.NewTestPKI(t, false)
	addr := tlsprobe.StartGoServer(t, &tls.Config{Certificates: []tls.Certificate{pki.Leaf}})
	rep, err := tlsprobe.Enumerate(context.Background(), tlsprobe.TCPDialer(addr), tlsprobe.Options{MaxConnections: 7})
	if !errors.Is(err, tlsprobe.ErrConnectionLimit) {
		t.Fatalf("error = %v, want ErrConnectionLimit", err)
	}
	if rep == nil || rep.Connections != 7 {
		t.Fatalf("partial report = %+v, want 7 connections", rep)
	}
}

func TestEnumeratePacing(t *testing.T) {
	t.Parallel()
	pki := tlsprobe.NewTestPKI(t, false)
	addr := tlsprobe.StartGoServer(t, &tls.Config{Certificates: []tls.Certificate{pki.Leaf}, MinVersion: tls.VersionTLS13})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var starts []time.Time
	dial := func(ctx context.Context) (net.Conn, error) {
		starts = append(starts, time.Now())
		return tlsprobe.TCPDialer(addr)(ctx)
	}
	const gap = 20 * time.Millisecond
	if _, err := tlsprobe.Enumerate(ctx, dial, tlsprobe.Options{MinInterval: gap}); err != nil {
		t.Fatal(err)
	}
	// The prober spaces the moments it decides to connect; this dialer
	// stamps a little later, by a scheduling delay that varies (2.4 ms
	// in one CI run), so one gap may look shorter by that much while the
	// one before it looks longer. Each gap gets a quarter of the
	// interval as slack (an unpaced prober dials well under a
	// millisecond apart), and the whole run must take the full
	// intervals less one delay.
	const slack = gap / 4
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < gap-slack {
			t.Fatalf("connections %d and %d started %s apart, want at least %s", i-1, i, d, gap)
		}
	}
	if n := len(starts); n < 3 {
		t.Fatalf("%d connections, want several", n)
	} else if d, want := starts[n-1].Sub(starts[0]), time.Duration(n-1)*gap-slack; d < want {
		t.Errorf("%d connections took %s, want at least %s", n, d, want)
	}
}

func TestEnumerateCanceled(t *testing.T) {
	t.Parallel()
	addr := startRawServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := tlsprobe.Enumerate(ctx, tlsprobe.TCPDialer(addr), tlsprobe.Options{Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the context's deadline", err)
	}
}
