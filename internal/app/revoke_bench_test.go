package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"fmt"
	"github.com/certwright/certwright/internal/store/postgres"
	"io"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	_ "modernc.org/sqlite"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// rawStore opens the app's database directly, to seed large inventories
// in seconds instead of issuing them one by one.
// rawArgs are the seeders' helpers for rawStore's dialect: a time as the
// store keeps it (PostgreSQL timestamptz, SQLite Unix microseconds) and
// the i-th placeholder.
func rawArgs(pg bool) (timeArg func(time.Time) any, ph func(i int) string) {
	timeArg = func(t time.Time) any {
		if pg {
			return t
		}
		return t.UnixMicro()
	}
	ph = func(i int) string {
		if pg {
			return "$" + strconv.Itoa(i)
		}
		return "?"
	}
	return timeArg, ph
}

func rawStore(b *testing.B, a *App) (*sql.DB, bool) {
	b.Helper()
	u := DBURL(a.cfg)
	if path, ok := strings.CutPrefix(u, "sqlite:"); ok {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db, false
	}
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, true
}

// seedCerts inserts n valid certificates of caID expiring in a year, with
// random serials in Certwright's format, and returns the serials; with
// revoked, each is also revoked (key_compromise, some with an invalidity date).
func seedCerts(b *testing.B, a *App, caID string, n int, revoked bool) []string {
	b.Helper()
	db, pg := rawStore(b, a)
	ctx := context.Background()
	serials := make([]string, n)
	for i := range serials {
		s, err := pki.NewSerial(nil)
		if err != nil {
			b.Fatal(err)
		}
		serials[i] = pki.SerialHex(s)
	}
	now := time.Now().UTC()
	notAfter := now.Add(365 * 24 * time.Hour)
	timeArg, ph := rawArgs(pg)
	const batch = 500
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		var q strings.Builder
		var args []any
		q.WriteString(`INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
			key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at) VALUES `)
		status := "valid"
		if revoked {
			status = "revoked"
		}
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(",")
			}
			k := len(args)
			fmt.Fprintf(&q, "(%s,%s,'web_server','bench','CN=bench','[]',%s,%s,'ECDSA',256,'ECDSA-SHA256','%s','fp','',%s,'[]',%s,%s)",
				ph(k+1), ph(k+2), ph(k+3), ph(k+4), status, ph(k+5), ph(k+6), ph(k+7))
			args = append(args, serials[i], caID, timeArg(now), timeArg(notAfter), "[]", []byte{0}, timeArg(now))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			b.Fatal(err)
		}
		if !revoked {
			continue
		}
		q.Reset()
		args = args[:0]
		q.WriteString(`INSERT INTO revocations (serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca) VALUES `)
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(",")
			}
			k := len(args)
			fmt.Fprintf(&q, "(%s,%s,%s,1,%s,'bench',%s,%s)", ph(k+1), ph(k+2), ph(k+3), ph(k+4), ph(k+5), ph(k+6))
			var inv any
			if i%4 == 0 {
				inv = timeArg(now.Add(-time.Hour))
			}
			ca := any(0)
			if pg {
				ca = false
			}
			args = append(args, serials[i], caID, timeArg(now), inv, timeArg(notAfter), ca)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if pg {
		_, err = db.ExecContext(ctx, "VACUUM ANALYZE")
	} else {
		_, err = db.ExecContext(ctx, "ANALYZE")
	}
	if err != nil {
		b.Fatal(err)
	}
	return serials
}

// issuingCA returns the ID of the data directory's issuing CA.
func issuingCA(b *testing.B, a *App) string {
	b.Helper()
	c, err := a.store.GetCA(context.Background(), a.cfg.DefaultCA)
	if err != nil {
		b.Fatal(err)
	}
	return c.ID
}

// ocspGETPaths builds the GET path of an RFC 5019 request (SHA-1 CertID)
// for each serial.
func ocspGETPaths(b *testing.B, a *App, caID string, serials []string) []string {
	b.Helper()
	c, err := a.store.GetCA(context.Background(), caID)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := ocsp.NewIssuer(cert)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]string, len(serials))
	for i, s := range serials {
		n, _ := new(big.Int).SetString(s, 16)
		id, err := iss.CertID(crypto.SHA1, n)
		if err != nil {
			b.Fatal(err)
		}
		der, err := (&xocsp.Request{HashAlgorithm: crypto.SHA1, IssuerNameHash: id.NameHash, IssuerKeyHash: id.KeyHash, SerialNumber: n}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = "/ocsp/" + caID + "/" + base64.StdEncoding.EncodeToString(der)
	}
	return out
}

// servePublic serves the plain-HTTP handler on a loopback port.
func servePublic(b *testing.B, a *App) string {
	b.Helper()
	h, err := a.PublicHandler()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// keepAliveClient is a minimal HTTP/1.1 client on one connection, so the
// benchmark measures the server rather than net/http's client.
type keepAliveClient struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

func dialKeepAlive(addr string) (*keepAliveClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &keepAliveClient{conn: c, br: bufio.NewReaderSize(c, 8192)}, nil
}

// get sends GET path and returns the status and body (valid until the next call).
func (c *keepAliveClient) get(path string) (int, []byte, error) {
	c.req = append(c.req[:0], "GET "...)
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: ocsp.bench\r\n\r\n"...)
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, nil, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length := -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(h) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(h, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return 0, nil, fmt.Errorf("no Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.br, c.body); err != nil {
		return 0, nil, err
	}
	return status, c.body, nil
}

// BenchmarkOCSPHTTP measures OCSP responses served over loopback HTTP (GET,
// RFC 5019) by keep-alive clients, for a CA with 100,000 issued
// certificates whose responses were pre-signed. Each request names a
// different certificate, cycling through all 100,000.
func BenchmarkOCSPHTTP(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			caID := issuingCA(b, a)
			serials := seedCerts(b, a, caID, 100_000, false)
			start := time.Now()
			n, err := a.revoker.Presign(context.Background(), caID)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("pre-signed %d responses in %s", n, time.Since(start).Round(time.Millisecond))
			paths := ocspGETPaths(b, a, caID, serials)
			addr := servePublic(b, a)
			// One response checked end to end before timing.
			cl, err := dialKeepAlive(addr)
			if err != nil {
				b.Fatal(err)
			}
			status, body, err := cl.get(paths[0])
			if err != nil || status != 200 {
				b.Fatalf("status %d, %v", status, err)
			}
			resp, err := xocsp.ParseResponse(body, nil)
			if err != nil || resp.Status != xocsp.Good {
				b.Fatalf("first response: %v, %+v", err, resp)
			}
			cl.conn.Close()
			for _, clients := range []int{32, 64} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					var next atomic.Int64
					b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.ReportAllocs()
					b.ResetTimer()
					t0 := time.Now()
					b.RunParallel(func(pb *testing.PB) {
						c, err := dialKeepAlive(addr)
						if err != nil {
							b.Error(err)
							return
						}
						defer c.conn.Close()
						for pb.Next() {
							status, _, err := c.get(paths[int(next.Add(1))%len(paths)])
							if err != nil || status != 200 {
								b.Errorf("status %d, %v", status, err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "responses/s")
				})
			}
		})
	}
}

// BenchmarkCRL measures building and signing the issuing CA's CRL with
// 100,000 and 1,000,000 revoked, unexpired certificates, read from the
// store. B/op is the memory allocated per build.
func BenchmarkCRL(b *testing.B) {
	for _, kind := range benchStores(b) {
		for _, n := range []int{100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/entries=%d", kind, n), func(b *testing.B) {
				a := benchApp(b, kind)
				caID := issuingCA(b, a)
				seedCerts(b, a, caID, n, true)
				ctx := context.Background()
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				b.ResetTimer()
				var last *revoke.CRL
				for b.Loop() {
					c, err := a.revoker.RegenerateCRL(ctx, caID)
					if err != nil {
						b.Fatal(err)
					}
					last = c
				}
				b.StopTimer()
				if last.Entries != n {
					b.Fatalf("CRL has %d entries, want %d", last.Entries, n)
				}
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(len(last.DER))/1e6, "crl-MB")
				b.ReportMetric(float64(after.HeapSys)/1e6, "heap-sys-MB")
			})
		}
	}
}

// BenchmarkRevokeBurst revokes 1,000 certificates one after another against
// a CA that already lists 1,000,000 revoked certificates, with the
// background loop rebuilding the CRL as it would in serve. Each revocation
// must answer revoked in OCSP when the call returns (checked); the
// benchmark reports the burst's duration and how long after the last
// revocation the served CRL lists it.
func BenchmarkRevokeBurst(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			caID := issuingCA(b, a)
			seedCerts(b, a, caID, 1_000_000, true)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.revoker.Run(ctx) }()
			b.Cleanup(func() { cancel(); <-done })
			if _, err := a.revoker.CRL(ctx, caID); err != nil {
				b.Fatal(err)
			}
			p := authz.WithRole("bench", authz.KindMachine, authz.RoleAdmin, authz.Scope{})
			var burst, lag time.Duration
			for b.Loop() {
				b.StopTimer()
				serials := seedCerts(b, a, caID, 1000, false)
				paths := ocspGETPaths(b, a, caID, serials)
				b.StartTimer()
				t0 := time.Now()
				for i, s := range serials {
					if _, _, err := a.revoker.Revoke(ctx, revoke.Request{Principal: p, Serial: s, Reason: pki.ReasonKeyCompromise}); err != nil {
						b.Fatal(err)
					}
					if i%50 == 0 {
						checkRevokedNow(b, a, caID, paths[i])
					}
				}
				burst += time.Since(t0)
				t1 := time.Now()
				lastSerial := serials[len(serials)-1]
				for !crlLists(b, a, caID, lastSerial) {
					if time.Since(t1) > 60*time.Second {
						b.Fatal("the CRL did not list the last revocation within 60 s")
					}
					time.Sleep(20 * time.Millisecond)
				}
				lag += time.Since(t1)
			}
			b.ReportMetric(burst.Seconds()/float64(b.N), "burst-s")
			b.ReportMetric(lag.Seconds()/float64(b.N), "crl-lag-s")
		})
	}
}

func checkRevokedNow(b *testing.B, a *App, caID, path string) {
	b.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(path, "/ocsp/"+caID+"/"))
	if err != nil {
		b.Fatal(err)
	}
	r := a.revoker.Respond(context.Background(), caID, raw)
	resp, err := xocsp.ParseResponse(r.DER, nil)
	if err != nil || resp.Status != xocsp.Revoked {
		b.Fatalf("OCSP right after revoke: %v, status %v", err, resp)
	}
}

// crlLists reports whether the CA's current CRL lists serial, scanning the
// DER for the serial's encoding (a full parse of 1M entries would dominate).
func crlLists(b *testing.B, a *App, caID, serial string) bool {
	b.Helper()
	c, err := a.revoker.CRL(context.Background(), caID)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := new(big.Int).SetString(serial, 16)
	enc := append([]byte{0x02, byte(len(n.Bytes()))}, n.Bytes()...)
	return bytes.Contains(c.DER, enc)
}
