package service

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// detectFake runs Detect against a fake server and checks the result;
// when a dialer is wanted, a TLS handshake must succeed over it.
func detectFake(t *testing.T, opts Options, handle func(*fake), w want) *Result {
	t.Helper()
	r, err := Detect(testContext(t), serve(t, handle), opts)
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, w)
	if w.dialer {
		assertUpgrade(t, r)
	}
	return r
}

// smtpServer is a fake SMTP server: extensions are the EHLO keywords it
// advertises; goAhead is what it answers STARTTLS with.
func smtpServer(cfg *tls.Config, goAhead string, extensions ...string) func(*fake) {
	return func(f *fake) {
		f.send("220 fake.test ESMTP ready\r\n")
		for {
			verb, _, ok := f.verb()
			if !ok {
				return
			}
			switch verb {
			case "EHLO":
				var b strings.Builder
				b.WriteString("250-fake.test greets you\r\n")
				for _, e := range extensions {
					b.WriteString("250-" + e + "\r\n")
				}
				b.WriteString("250 8BITMIME\r\n")
				f.send(b.String())
			case "STARTTLS":
				f.send(goAhead)
				if strings.HasPrefix(goAhead, "220") {
					f.startTLS(cfg)
					return
				}
			case "QUIT":
				f.send("221 bye\r\n")
				return
			default:
				f.send("502 not implemented\r\n")
			}
		}
	}
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	tests := []struct {
		name    string
		goAhead string
		ext     []string
		want    want
	}{
		{"starttls", "220 go ahead\r\n", []string{"STARTTLS", "SIZE 1000"}, want{ProtoSMTP, EncryptionStartTLS, nil, true}},
		{"auth before starttls", "220 go ahead\r\n", []string{"AUTH PLAIN LOGIN", "STARTTLS"}, want{ProtoSMTP, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"legacy AUTH= before starttls", "220 go ahead\r\n", []string{"AUTH=CRAM-MD5", "STARTTLS"}, want{ProtoSMTP, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"no starttls", "", []string{"AUTH PLAIN"}, want{ProtoSMTP, EncryptionNone, []string{CodeNoTLS, CodeAuthBeforeTLS}, false}},
		{"starttls refused", "454 TLS not available\r\n", []string{"STARTTLS"}, want{ProtoSMTP, EncryptionNone, []string{CodeUpgradeRefused}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := detectFake(t, testOptions(), smtpServer(cfg, tt.goAhead, tt.ext...), tt.want)
			if r.Banner != "fake.test ESMTP ready" {
				t.Errorf("banner %q", r.Banner)
			}
		})
	}
}

// TestSMTPStartTLSInjection: bytes the server sends between its go-ahead
// and the ClientHello (CVE-2011-0411) make the dialer refuse the connection.
func TestSMTPStartTLSInjection(t *testing.T) {
	t.Parallel()
	addr := serve(t, smtpServer(serverTLS(t), "220 go ahead\r\n250 injected\r\n", "STARTTLS"))
	r, err := Detect(testContext(t), addr, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.TLSDialer == nil {
		t.Fatalf("no TLSDialer; findings %+v", r.Findings)
	}
	conn, err := r.TLSDialer(testContext(t))
	if !errors.Is(err, errDataAfterUpgrade) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("TLSDialer error = %v, want errDataAfterUpgrade", err)
	}
}

// TestSMTPImplicitTLS: SMTP inside TLS on an unknown port is found by its
// greeting after the handshake.
func TestSMTPImplicitTLS(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	inner := smtpServer(cfg, "", "AUTH PLAIN")
	detectFake(t, testOptions(), func(f *fake) {
		tc := tls.Server(f, cfg)
		if tc.Handshake() != nil {
			return
		}
		inner(&fake{Conn: tc, r: newReader(tc)})
	}, want{ProtoSMTP, EncryptionImplicitTLS, nil, true})
}

func imapServer(cfg *tls.Config, greeting string, caps string) func(*fake) {
	return func(f *fake) {
		f.send(greeting + "\r\n")
		for {
			_, l, ok := f.verb()
			if !ok {
				return
			}
			tag, cmd, _ := strings.Cut(l, " ")
			switch strings.ToUpper(cmd) {
			case "CAPABILITY":
				f.send("* CAPABILITY " + caps + "\r\n" + tag + " OK done\r\n")
			case "STARTTLS":
				f.send(tag + " OK begin TLS\r\n")
				f.startTLS(cfg)
				return
			case "LOGOUT":
				f.send("* BYE\r\n" + tag + " OK\r\n")
				return
			default:
				f.send(tag + " BAD unknown\r\n")
			}
		}
	}
}

func TestIMAP(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	tests := []struct {
		name, greeting, caps string
		want                 want
	}{
		{"capability in greeting", "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready", "", want{ProtoIMAP, EncryptionStartTLS, nil, true}},
		{"capability command", "* OK ready", "IMAP4rev1 STARTTLS LOGINDISABLED", want{ProtoIMAP, EncryptionStartTLS, nil, true}},
		{"login allowed before tls", "* OK ready", "IMAP4rev1 STARTTLS AUTH=PLAIN", want{ProtoIMAP, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"no starttls", "* OK ready", "IMAP4rev1 AUTH=PLAIN", want{ProtoIMAP, EncryptionNone, []string{CodeNoTLS}, false}},
		{"preauth", "* PREAUTH [CAPABILITY IMAP4rev1] logged in", "", want{ProtoIMAP, EncryptionNone, []string{CodeNoTLS, CodeUnauthenticated}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, testOptions(), imapServer(cfg, tt.greeting, tt.caps), tt.want)
		})
	}
}

func pop3Server(cfg *tls.Config, capa string) func(*fake) {
	return func(f *fake) {
		f.send("+OK POP3 ready\r\n")
		for {
			verb, _, ok := f.verb()
			if !ok {
				return
			}
			switch verb {
			case "CAPA":
				f.send("+OK\r\n" + capa + ".\r\n")
			case "STLS":
				if !strings.Contains(capa, "STLS") {
					f.send("-ERR no\r\n")
					continue
				}
				f.send("+OK begin TLS\r\n")
				f.startTLS(cfg)
				return
			case "QUIT":
				f.send("+OK bye\r\n")
				return
			default:
				f.send("-ERR unknown\r\n")
			}
		}
	}
}

func TestPOP3(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	tests := []struct {
		name, capa string
		want       want
	}{
		{"stls only", "STLS\r\nTOP\r\n", want{ProtoPOP3, EncryptionStartTLS, nil, true}},
		{"user before stls", "STLS\r\nUSER\r\nSASL PLAIN\r\n", want{ProtoPOP3, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"no stls", "USER\r\n", want{ProtoPOP3, EncryptionNone, []string{CodeNoTLS}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, testOptions(), pop3Server(cfg, tt.capa), tt.want)
		})
	}
}

func ftpServer(cfg *tls.Config, feat, userReply string) func(*fake) {
	return func(f *fake) {
		f.send("220 FakeFTP ready\r\n")
		for {
			verb, l, ok := f.verb()
			if !ok {
				return
			}
			switch {
			case verb == "FEAT":
				f.send("211-Features:\r\n" + feat + "211 End\r\n")
			case strings.EqualFold(l, "AUTH TLS") && strings.Contains(feat, "AUTH TLS"):
				f.send("234 AUTH TLS OK.\r\n")
				f.startTLS(cfg)
				return
			case verb == "USER":
				f.send(userReply)
			case verb == "QUIT":
				f.send("221 bye\r\n")
				return
			default:
				f.send("500 unknown\r\n")
			}
		}
	}
}

func TestFTP(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	tests := []struct {
		name, feat, user string
		want             want
	}{
		{"auth tls required", " AUTH TLS\r\n PBSZ\r\n PROT\r\n", "530 TLS required\r\n", want{ProtoFTP, EncryptionStartTLS, nil, true}},
		{"auth tls optional", " AUTH TLS;TLS-C\r\n", "331 password please\r\n", want{ProtoFTP, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"no auth tls", " MDTM\r\n SIZE\r\n", "331 password please\r\n", want{ProtoFTP, EncryptionNone, []string{CodeNoTLS}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, testOptions(), ftpServer(cfg, tt.feat, tt.user), tt.want)
		})
	}
}

// The StartTLS ExtendedRequest and two answers, encoded by hand from
// RFC 4511 sections 4.12 and 4.14 so the fake shares no code with Detect.
const (
	ldapStartTLSHex = "301d02010177188016" + "312e332e362e312e342e312e313436362e3230303337"
	ldapSuccessHex  = "300c02010178070a010004000400"
	// protocolError, diagnosticMessage "unsupported".
	ldapRefusedHex = "301702010178120a01020400040b756e737570706f72746564"
)

func ldapServer(cfg *tls.Config, answer string) func(*fake) {
	return func(f *fake) {
		req := make([]byte, len(ldapStartTLSHex)/2)
		if _, err := io.ReadFull(f, req); err != nil || hex.EncodeToString(req) != ldapStartTLSHex {
			return
		}
		b, _ := hex.DecodeString(answer)
		_, _ = f.Write(b)
		if answer == ldapSuccessHex {
			f.startTLS(cfg)
		}
	}
}

func TestLDAP(t *testing.T) {
	t.Parallel()
	if got := hex.EncodeToString(startTLSRequest()); got != ldapStartTLSHex {
		t.Fatalf("StartTLS request %s, want %s", got, ldapStartTLSHex)
	}
	cfg := serverTLS(t)
	opts := testOptions()
	opts.Protocol = ProtoLDAP
	tests := []struct {
		name, answer string
		want         want
	}{
		{"starttls", ldapSuccessHex, want{ProtoLDAP, EncryptionStartTLS, nil, true}},
		{"refused", ldapRefusedHex, want{ProtoLDAP, EncryptionNone, []string{CodeNoTLS}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, opts, ldapServer(cfg, tt.answer), tt.want)
		})
	}
}

func xmppServer(cfg *tls.Config, features string) func(*fake) {
	return func(f *fake) {
		var buf []byte
		for !bytes.Contains(buf, []byte("version='1.0'")) || !bytes.HasSuffix(buf, []byte(">")) {
			b, err := f.r.ReadByte()
			if err != nil || len(buf) > 4096 {
				return
			}
			buf = append(buf, b)
		}
		f.send("<?xml version='1.0'?><stream:stream from='fake.test' id='1' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" +
			"<stream:features>" + features + "</stream:features>")
		buf = buf[:0]
		for !bytes.HasSuffix(buf, []byte("/>")) {
			b, err := f.r.ReadByte()
			if err != nil || len(buf) > 4096 {
				return
			}
			buf = append(buf, b)
		}
		f.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		f.startTLS(cfg)
	}
}

func TestXMPP(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	opts := testOptions()
	opts.Protocol = ProtoXMPP
	opts.ServerName = "fake.test"
	const mechs = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
	tests := []struct {
		name, features string
		want           want
	}{
		{"required", "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>", want{ProtoXMPP, EncryptionStartTLS, nil, true}},
		{"optional with plain", "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + mechs, want{ProtoXMPP, EncryptionOptional, []string{CodeAuthBeforeTLS}, true}},
		{"none", mechs, want{ProtoXMPP, EncryptionNone, []string{CodeNoTLS}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, opts, xmppServer(cfg, tt.features), tt.want)
		})
	}
}

// mysqlGreeting builds a protocol-10 handshake packet with the given
// capability flags.
func mysqlGreeting(caps uint32) []byte {
	p := []byte{10}
	p = append(p, "8.0.36\x00"...)
	p = binary.LittleEndian.AppendUint32(p, 7)
	p = append(p, "abcdefgh"...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 0x21, 2, 0)
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21)
	p = append(p, make([]byte, 10)...)
	p = append(p, "ijklmnopqrst\x00caching_sha2_password\x00"...)
	return append([]byte{byte(len(p)), byte(len(p) >> 8), 0, 0}, p...)
}

func TestMySQLWithTLS(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	r := detectFake(t, testOptions(), func(f *fake) {
		_, _ = f.Write(mysqlGreeting(0x000fffff))
		req := make([]byte, 36)
		if _, err := io.ReadFull(f, req); err != nil {
			return
		}
		caps := binary.LittleEndian.Uint32(req[4:])
		if req[0] != 32 || req[3] != 1 || caps&0x0800 == 0 {
			return
		}
		f.startTLS(cfg)
	}, want{ProtoMySQL, EncryptionStartTLS, nil, true})
	if r.Version != "8.0.36" {
		t.Errorf("version %q", r.Version)
	}
}

func TestNATSWithTLS(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t)
	tests := []struct {
		name, info string
		want       want
	}{
		{"required", `{"version":"2.10.0","tls_required":true,"auth_required":true}`, want{ProtoNATS, EncryptionStartTLS, nil, true}},
		{"available", `{"version":"2.10.0","tls_available":true,"auth_required":true}`, want{ProtoNATS, EncryptionOptional, []string{CodeTLSOptional}, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detectFake(t, testOptions(), func(f *fake) {
				f.send("INFO " + tt.info + "\r\n")
				f.startTLS(cfg)
			}, tt.want)
		})
	}
}

// TestPostgresRefusesTLS: a server answering SSLRequest with 'N'.
func TestPostgresRefusesTLS(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Protocol = ProtoPostgreSQL
	detectFake(t, opts, func(f *fake) {
		req := make([]byte, 8)
		if _, err := io.ReadFull(f, req); err == nil && hex.EncodeToString(req) == "0000000804d2162f" {
			f.send("N")
		}
	}, want{ProtoPostgreSQL, EncryptionNone, []string{CodeNoTLS}, false})
}

// TestPostgresDirectTLS: a TLS server negotiating ALPN "postgresql" (what
// PostgreSQL 17 does for sslnegotiation=direct) is PostgreSQL over implicit TLS.
func TestPostgresDirectTLS(t *testing.T) {
	t.Parallel()
	cfg := serverTLS(t, "postgresql")
	opts := testOptions()
	opts.Protocol = ProtoPostgreSQL
	r := detectFake(t, opts, func(f *fake) { f.startTLS(cfg) }, want{ProtoPostgreSQL, EncryptionImplicitTLS, nil, true})
	if r.ALPN != "postgresql" {
		t.Errorf("ALPN %q", r.ALPN)
	}
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tls  bool
		h    http.HandlerFunc
		want want
		hsts *HSTS
	}{
		{"redirects to https", false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://fake.test/", http.StatusMovedPermanently)
		}, want{ProtoHTTP, EncryptionNone, nil, false}, nil},
		{"redirects to http", false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://fake.test/login", http.StatusFound)
		}, want{ProtoHTTP, EncryptionNone, []string{CodeNoHTTPSRedirect}, false}, nil},
		{"serves plaintext", false, func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "hello")
		}, want{ProtoHTTP, EncryptionNone, []string{CodeNoHTTPSRedirect}, false}, nil},
		{"https with hsts", true, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload")
		}, want{ProtoHTTP, EncryptionImplicitTLS, nil, true}, &HSTS{Header: "max-age=63072000; includeSubDomains; preload", MaxAge: 63072000, IncludeSubDomains: true, Preload: true}},
		{"https with short hsts", true, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Strict-Transport-Security", `max-age="86400"`)
		}, want{ProtoHTTP, EncryptionImplicitTLS, []string{CodeHSTSShort, CodeHSTSNoSubdomains}, true}, &HSTS{Header: `max-age=\"86400\"`, MaxAge: 86400}},
		{"https without hsts", true, func(http.ResponseWriter, *http.Request) {}, want{ProtoHTTP, EncryptionImplicitTLS, []string{CodeHSTSMissing}, true}, nil},
		{"https with broken hsts", true, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=1; max-age=2")
		}, want{ProtoHTTP, EncryptionImplicitTLS, []string{CodeHSTSInvalid}, true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(tt.h)
			srv.Config.ErrorLog = discardLogger()
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			r, err := Detect(testContext(t), srv.Listener.Addr().String(), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			check(t, r, tt.want)
			if (r.HSTS == nil) != (tt.hsts == nil) || (r.HSTS != nil && *r.HSTS != *tt.hsts) {
				t.Errorf("HSTS %+v, want %+v", r.HSTS, tt.hsts)
			}
			if tt.tls {
				assertUpgrade(t, r)
			}
		})
	}
}

// TestUnrecognised: a greeting Detect does not know is reported escaped,
// and a silent plaintext port is "unknown" after a bounded number of tries.
func TestUnrecognised(t *testing.T) {
	t.Parallel()
	greeter := serve(t, func(f *fake) { f.send("SSH-2.0-Fake\x1b[31m\r\n") })
	silent := serve(t, func(f *fake) { _, _ = io.Copy(io.Discard, f) })
	opts := testOptions()
	opts.IOTimeout = 300 * time.Millisecond
	for _, tc := range []struct {
		addr, banner string
	}{{greeter, `SSH-2.0-Fake\x1b[31m`}, {silent, ""}} {
		r, err := Detect(testContext(t), tc.addr, opts)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r, want{ProtoUnknown, EncryptionUnknown, []string{CodeUnrecognised}, false})
		if r.Banner != tc.banner {
			t.Errorf("banner %q, want %q", r.Banner, tc.banner)
		}
	}
}

func TestDetectErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		addr string
		opts Options
	}{
		{closed, testOptions()},
		{"no-port", Options{}},
		{"127.0.0.1:99999", Options{}},
		{"127.0.0.1:25", Options{Protocol: "gopher"}},
		{"127.0.0.1:25", Options{LocalName: "a\r\nRCPT TO:<x>"}},
		{"127.0.0.1:25", Options{IOTimeout: -1}},
	} {
		if r, err := Detect(testContext(t), tc.addr, tc.opts); err == nil {
			t.Errorf("Detect(%q, %+v) = %+v, want an error", tc.addr, tc.opts, r)
		}
	}
}

// TestPlaintextBrokersWithAuth: brokers that demand credentials are still
// reported as plaintext, without the unauthenticated-access finding.
func TestPlaintextBrokersWithAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, proto, answer string
		want                want
	}{
		{"redis NOAUTH", ProtoRedis, "-NOAUTH Authentication required.\r\n", want{ProtoRedis, EncryptionNone, []string{CodeNoTLS}, false}},
		{"mqtt not authorized", ProtoMQTT, "\x20\x02\x00\x05", want{ProtoMQTT, EncryptionNone, []string{CodeNoTLS}, false}},
		{"nats with auth", ProtoNATS, "INFO {\"auth_required\":true}\r\n", want{ProtoNATS, EncryptionNone, []string{CodeNoTLS}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.Protocol = tt.proto
			detectFake(t, opts, func(f *fake) {
				if tt.proto != ProtoNATS {
					if _, err := f.r.ReadByte(); err != nil {
						return
					}
				}
				f.send(tt.answer)
				_, _ = io.Copy(io.Discard, f)
			}, tt.want)
		})
	}
}
