package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseHSTS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    HSTS
		wantErr bool
	}{
		{in: "max-age=31536000", want: HSTS{MaxAge: 31536000}},
		{in: "Max-Age=10 ; INCLUDESUBDOMAINS ;preload", want: HSTS{MaxAge: 10, IncludeSubDomains: true, Preload: true}},
		{in: `max-age="300"; foo="a;b"; includeSubDomains`, want: HSTS{MaxAge: 300, IncludeSubDomains: true}},
		{in: ";;max-age=0;;", want: HSTS{MaxAge: 0}},
		{in: "max-age=99999999999999999999", want: HSTS{MaxAge: 1<<63 - 1}},
		{in: "includeSubDomains", wantErr: true},
		{in: "max-age=1; max-age=2", wantErr: true},
		{in: "max-age=-5", wantErr: true},
		{in: "max-age=", wantErr: true},
		{in: "max-age", wantErr: true},
		{in: "max-age=1 2", wantErr: true},
		{in: `max-age="12`, wantErr: true},
		{in: "max-age=1, includeSubDomains", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseHSTS(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseHSTS(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, errHSTS) {
				t.Errorf("parseHSTS(%q) error %v does not wrap errHSTS", tt.in, err)
			}
			continue
		}
		got.Header = ""
		if got != tt.want {
			t.Errorf("parseHSTS(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func memWire(data string, timeout time.Duration) *wire {
	return newWire(context.Background(), memConn{r: bytes.NewReader([]byte(data))}, timeout)
}

func TestReadReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		code     int
		lines    []string
		err      error
	}{
		{"smtp multi-line", "250-a.test\r\n250-STARTTLS\r\n250 SIZE 10\r\n", 250, []string{"a.test", "STARTTLS", "SIZE 10"}, nil},
		{"ftp free text", "211-Features:\r\n AUTH TLS\r\n211 End\r\n", 211, []string{"Features:", " AUTH TLS", "End"}, nil},
		{"bare code", "220\r\n", 220, []string{""}, nil},
		{"no code", "hello\r\n", 0, nil, errNotThis},
		{"endless", strings.Repeat("250-x\r\n", maxReplyLines+1), 0, nil, errTooLong},
		{"long line", "250 " + strings.Repeat("x", maxLine+10) + "\r\n", 0, nil, errTooLong},
		{"cut off", "250-a\r\n250-b", 0, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		rep, err := readReply(memWire(tt.in, time.Second))
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: error %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || rep.code != tt.code || len(rep.lines) != len(tt.lines) {
			t.Errorf("%s: got %d %q, %v", tt.name, rep.code, rep.lines, err)
			continue
		}
		for i, l := range tt.lines {
			if string(rep.lines[i]) != l {
				t.Errorf("%s: line %d = %q, want %q", tt.name, i, rep.lines[i], l)
			}
		}
	}
}

func TestShown(t *testing.T) {
	t.Parallel()
	if got := shown([]byte("ok\r\n\x1b[2J\xff\"é")); got != `ok\r\n\x1b[2J\xff\"\u00e9` {
		t.Errorf("shown = %q", got)
	}
	long := shown(bytes.Repeat([]byte("a"), 1000))
	if len(long) != maxShown+3 || !strings.HasSuffix(long, "...") {
		t.Errorf("long input shown as %d bytes", len(long))
	}
}

func TestClassifyBanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		banner string
		h      hint
		want   string
	}{
		{"220 mx.test ESMTP Postfix\r\n", hint{}, ProtoSMTP},
		{"220 ProFTPD Server ready\r\n", hint{}, ProtoFTP},
		{"220 welcome\r\n", hintFor(21, ""), ProtoFTP},
		{"220 welcome\r\n", hint{}, ProtoSMTP},
		{"* OK Dovecot ready.\r\n", hint{}, ProtoIMAP},
		{"+OK POP3 ready\r\n", hint{}, ProtoPOP3},
		{"INFO {}\r\n", hint{}, ProtoNATS},
		{fuzzSeeds[5][:bannerPeek], hint{}, ProtoMySQL},
		{"SSH-2.0-OpenSSH_9.2\r\n", hint{}, ""},
		{"2", hint{}, ""},
	}
	for _, tt := range tests {
		got := ""
		if p := classifyBanner([]byte(tt.banner), tt.h); p != nil {
			got = p.name
		}
		if got != tt.want {
			t.Errorf("classifyBanner(%q) = %q, want %q", tt.banner, got, tt.want)
		}
	}
}

func TestParseAMQPStart(t *testing.T) {
	t.Parallel()
	frame := amqpStartFrame()
	s, err := parseAMQPStart(frame[7 : len(frame)-1])
	if err != nil {
		t.Fatal(err)
	}
	if s.major != 0 || s.minor != 9 || string(s.props["product"]) != "RabbitMQ" || string(s.props["version"]) != "3.10.8" || string(s.mechanisms) != "PLAIN AMQPLAIN" {
		t.Errorf("parsed %+v", s)
	}
	if _, err := parseAMQPStart(frame[7 : len(frame)-10]); err == nil {
		t.Error("a truncated frame parsed")
	}
}

func TestParseMySQLHandshake(t *testing.T) {
	t.Parallel()
	maria, err := parseMySQLHandshake([]byte(fuzzSeeds[5][4:]))
	if err != nil {
		t.Fatal(err)
	}
	if mysqlVersion(maria.version) != "10.11.19-MariaDB-0+deb12u1" || maria.caps&mysqlClientSSL != 0 {
		t.Errorf("MariaDB handshake parsed as %+v", maria)
	}
	withTLS, err := parseMySQLHandshake(mysqlGreeting(0xfffff)[4:])
	if err != nil || withTLS.caps&mysqlClientSSL == 0 || string(withTLS.version) != "8.0.36" {
		t.Errorf("handshake with CLIENT_SSL parsed as %+v, %v", withTLS, err)
	}
	refused, err := parseMySQLHandshake([]byte("\xff\x6a\x04Host 'x' is not allowed to connect"))
	if err != nil || refused.errCode != 1130 || !bytes.HasPrefix(refused.errMsg, []byte("Host")) {
		t.Errorf("error packet parsed as %+v, %v", refused, err)
	}
}

func TestMQTTConnectPacket(t *testing.T) {
	t.Parallel()
	a, err := mqttConnectPacket()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := mqttConnectPacket()
	if a[0] != mqttConnect || int(a[1]) != len(a)-2 {
		t.Fatalf("bad fixed header % x", a[:2])
	}
	idLen := int(binary.BigEndian.Uint16(a[12:14]))
	if idLen > 23 || 14+idLen != len(a) {
		t.Errorf("client identifier of %d bytes (MQTT 3.1.1 guarantees 23)", idLen)
	}
	if bytes.Equal(a, b) {
		t.Error("two CONNECTs share a client identifier: a probe could take over a session")
	}
}

// TestPostgresPlaintextCheck: the plaintext check reads the startup reply,
// and MaxConnections bounds the extra connections it needs.
func TestPostgresPlaintextCheck(t *testing.T) {
	t.Parallel()
	const hbaRefusal = "E\x00\x00\x00\x50SFATAL\x00C28000\x00Mno pg_hba.conf entry for host \"127.0.0.1\", no encryption\x00\x00"
	tests := []struct {
		name, startupReply string
		max                int
		want               Encryption
		codes              []string
		conns              int
	}{
		{"accepted", "R\x00\x00\x00\x08\x00\x00\x00\x03", 0, EncryptionOptional, []string{CodeTLSOptional}, 3},
		{"refused by pg_hba", hbaRefusal[:1] + string(binary.BigEndian.AppendUint32(nil, uint32(len(hbaRefusal)-1))) + hbaRefusal[5:], 0, EncryptionStartTLS, nil, 3},
		{"budget of one", "R\x00\x00\x00\x08\x00\x00\x00\x03", 1, EncryptionStartTLS, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := serve(t, func(f *fake) {
				head := make([]byte, 8)
				if _, err := io.ReadFull(f, head); err != nil {
					return
				}
				if binary.BigEndian.Uint32(head[4:]) == pgSSLRequestCode {
					f.send("S")
					return
				}
				f.send(tt.startupReply)
			})
			opts := testOptions()
			opts.Protocol = ProtoPostgreSQL
			opts.MaxConnections = tt.max
			r, err := Detect(testContext(t), addr, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Connections != tt.conns {
				t.Errorf("used %d connections, want %d", r.Connections, tt.conns)
			}
			check(t, r, want{ProtoPostgreSQL, tt.want, tt.codes, true})
		})
	}
}

// TestCancel: cancelling the context unblocks Detect at once, whatever the timeouts.
func TestCancel(t *testing.T) {
	t.Parallel()
	addr := serve(t, func(f *fake) { _, _ = io.Copy(io.Discard, f) })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := Detect(ctx, addr, Options{BannerTimeout: time.Minute, IOTimeout: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Detect took %v after cancellation", d)
	}
}

func TestHostHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, name string
		tls        bool
		want       string
	}{
		{"[::1]:80", "::1", false, "[::1]"},
		{"[::1]:8080", "::1", false, "[::1]:8080"},
		{"www.test:443", "www.test", true, "www.test"},
		{"www.test:443", "www.test", false, "www.test:443"},
	}
	for _, tt := range tests {
		d := &detector{addr: tt.addr, opts: Options{ServerName: tt.name}}
		if got := d.hostHeader(tt.tls); got != tt.want {
			t.Errorf("hostHeader(%s, tls=%v) = %q, want %q", tt.addr, tt.tls, got, tt.want)
		}
	}
}
