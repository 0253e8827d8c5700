package tlsprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "re-capture the server flights in testdata/flights from loopback servers")

// recordingConn keeps what the server sent.
type recordingConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// TestCaptureFlights refreshes the fuzz seeds with real server answers:
// go test ./internal/scan/tlsprobe -run TestCaptureFlights -update
func TestCaptureFlights(t *testing.T) {
	if !*update {
		t.Skip("run with -update to re-capture testdata/flights")
	}
	rsaPKI, ecPKI := NewTestPKI(t, true), NewTestPKI(t, false)
	servers := map[string]string{
		"go-tls13":      StartGoServer(t, &tls.Config{Certificates: []tls.Certificate{ecPKI.Leaf}, MinVersion: tls.VersionTLS12}),
		"openssl-dhe":   StartOpenSSL(t, rsaPKI, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", "-dhparam", "testdata/dh1024.pem"),
		"openssl-mixed": StartOpenSSL(t, rsaPKI, "-cipher", "DEFAULT:aNULL:@SECLEVEL=0"),
	}
	dir := filepath.Join("testdata", "flights")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, addr := range servers {
		var mu sync.Mutex
		var bufs []*bytes.Buffer
		dial := func(ctx context.Context) (net.Conn, error) {
			c, err := TCPDialer(addr)(ctx)
			if err != nil {
				return nil, err
			}
			b := &bytes.Buffer{}
			mu.Lock()
			bufs = append(bufs, b)
			mu.Unlock()
			return recordingConn{Conn: c, mu: &mu, buf: b}, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := Enumerate(ctx, dial, Options{ServerName: "localhost", Timeout: 5 * time.Second})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Keep one flight per distinct shape (first record type, handshake
		// types), so the seeds stay few and varied.
		kept := map[string]bool{}
		for _, b := range bufs {
			data := b.Bytes()
			if len(data) == 0 || len(data) > 16<<10 {
				continue
			}
			shape := flightShape(data)
			if kept[shape] {
				continue
			}
			kept[shape] = true
			file := filepath.Join(dir, fmt.Sprintf("%s-%02d.hex", name, len(kept)))
			if err := os.WriteFile(file, []byte(hex.EncodeToString(data)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// flightShape names a flight by its message types, version and kind of
// key exchange.
func flightShape(data []byte) string {
	hr := &handshakeReader{r: bytes.NewReader(data)}
	var parts []string
	for range 8 {
		typ, body, err := hr.next()
		var a Alert
		switch {
		case errors.As(err, &a):
			return strings.Join(append(parts, fmt.Sprintf("alert%d", a.Description)), ",")
		case err != nil:
			return strings.Join(parts, ",")
		case typ == typeServerHello:
			if sh, err := ParseServerHello(body); err == nil {
				s, _ := LookupSuite(sh.Suite)
				parts = append(parts, fmt.Sprintf("sh%x/%s/%s/%t", sh.Version, s.Kex, s.Auth, sh.Retry))
				continue
			}
		}
		parts = append(parts, fmt.Sprint(typ))
	}
	return strings.Join(parts, ",")
}

// seedFlights returns the captured flights.
func seedFlights(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "flights", "*.hex"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed flights in testdata/flights (re-capture with -update): %v", err)
	}
	var out [][]byte
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		data, err := hex.DecodeString(strings.TrimSpace(string(text)))
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		out = append(out, data)
	}
	return out
}

// seedMessages returns the captured handshake message bodies of type typ.
func seedMessages(f *testing.F, typ uint8) [][]byte {
	var out [][]byte
	for _, data := range seedFlights(f) {
		hr := &handshakeReader{r: bytes.NewReader(data)}
		for {
			t, body, err := hr.next()
			if err != nil {
				break
			}
			if t == typ {
				out = append(out, body)
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no captured handshake message of type %d", typ)
	}
	return out
}

// FuzzReadFlight feeds arbitrary server bytes through the record layer,
// reassembly and every parser. It must never panic, and never read past
// the flight limit.
func FuzzReadFlight(f *testing.F) {
	for _, d := range seedFlights(f) {
		f.Add(d)
	}
	f.Add([]byte{recordAlert, 3, 3, 0, 2, 2, alertHandshakeFailure})
	f.Add([]byte{0x80, 0x2e, 4, 0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		fl, err := readFlight(r)
		if fl == nil {
			t.Fatal("readFlight returned no flight")
		}
		if read := len(data) - r.Len(); read > maxFlightBytes {
			t.Fatalf("read %d bytes, limit %d", read, maxFlightBytes)
		}
		if err == nil && fl.alert == nil && fl.hello == nil {
			t.Fatal("no error, alert or ServerHello")
		}
		if fl.hello != nil && fl.ske != nil {
			if s, ok := LookupSuite(fl.hello.Suite); ok {
				_, _ = ParseServerKeyExchange(fl.ske, s.Kex, s.Export)
			}
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("error message of %d bytes: peer bytes are not bounded", len(err.Error()))
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	for _, b := range seedMessages(f, typeServerHello) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sh, err := ParseServerHello(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		off := 2 + 32 + 1 + int(body[34])
		if got := uint16(body[off])<<8 | uint16(body[off+1]); got != sh.Suite {
			t.Fatalf("suite 0x%04x, but the body says 0x%04x", sh.Suite, got)
		}
		if sh.Retry != bytes.Equal(body[2:34], helloRetryRandom[:]) {
			t.Fatalf("Retry = %t for random %x", sh.Retry, body[2:34])
		}
	})
}

func FuzzParseServerKeyExchange(f *testing.F) {
	for _, b := range seedMessages(f, typeServerKeyExchange) {
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	kinds := []KeyExchange{KexDHE, KexECDHE, KexRSA}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		kex := kinds[int(kind)%len(kinds)]
		ske, err := ParseServerKeyExchange(body, kex, kex == KexRSA)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if ske.DHPrimeBits > 8*len(body) || ske.RSAModulusBits > 8*len(body) {
			t.Fatalf("sizes %+v exceed the %d-byte body", ske, len(body))
		}
	})
}

func FuzzParseCertificate(f *testing.F) {
	for _, b := range seedMessages(f, typeCertificate) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		chain, err := ParseCertificate(body)
		if err != nil {
			return
		}
		total := 0
		for _, c := range chain {
			if len(c) == 0 {
				t.Fatal("empty certificate accepted")
			}
			total += len(c) + 3
		}
		if total+3 != len(body) {
			t.Fatalf("certificates cover %d of %d bytes", total+3, len(body))
		}
	})
}
