package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"
)

// Server bytes seen on the wire (the real services on this machine) or
// written from the specifications; seeds for every fuzz target.
var fuzzSeeds = []string{
	"220 mail.example ESMTP\r\n250-mail.example\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n220 go\r\n",
	"220-first\r\n220-second\r\n220 last\r\n",
	"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na OK\r\nb OK\r\n",
	"+OK POP3\r\n+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n+OK\r\n",
	"220 FTP ready\r\n211-Features:\r\n AUTH TLS\r\n211 End\r\n331 pass\r\n",
	"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x0b\x00\x00\x00Q5V12D@S\x00\xfe\xf7-\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00`ghSEAVmA;B{\x00mysql_native_password\x00",
	"INFO {\"server_id\":\"N\",\"version\":\"2.9.10\",\"proto\":1,\"tls_required\":true,\"auth_required\":true} \r\n",
	"S",
	"R\x00\x00\x00\x08\x00\x00\x00\x00E\x00\x00\x00kSFATAL\x00VFATAL\x00C28000\x00Mrole \"certwright_scan\" does not exist\x00Fmiscinit.c\x00L768\x00RInitializeSessionUserId\x00\x00",
	"+PONG\r\n$40\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:x\r\n\r\n",
	"-NOAUTH Authentication required.\r\n",
	" \x02\x00\x00",
	"AMQP\x01\x01\x00\x0a",
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nServer: nginx\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\n\r\n",
	"\x16\x03\x03\x00\x02\x02\x28",
	string(amqpStartFrame()),
	string(mustHex(ldapSuccessHex)),
	string(mustHex(ldapRefusedHex)),
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// amqpStartFrame is a Connection.Start method frame as RabbitMQ sends it,
// shortened.
func amqpStartFrame() []byte {
	table := []byte{}
	for _, kv := range [][2]string{{"product", "RabbitMQ"}, {"version", "3.10.8"}} {
		table = append(table, byte(len(kv[0])))
		table = append(table, kv[0]...)
		table = append(table, 'S', 0, 0, 0, byte(len(kv[1])))
		table = append(table, kv[1]...)
	}
	table = append(table, 12)
	table = append(table, "capabilities"...)
	table = append(table, 'F', 0, 0, 0, 7, 4, 'a', 'b', 'c', 'd', 't', 1)
	p := []byte{0, 10, 0, 10, 0, 9, 0, 0, 0, byte(len(table))}
	p = append(p, table...)
	p = append(p, 0, 0, 0, 14)
	p = append(p, "PLAIN AMQPLAIN"...)
	p = append(p, 0, 0, 0, 5)
	p = append(p, "en_US"...)
	head := []byte{1, 0, 0, 0, 0, 0, byte(len(p))}
	return append(append(head, p...), amqpFrameEnd)
}

var fuzzPorts = []int{1, 21, 25, 80, 110, 143, 389, 443, 465, 993, 1883, 3306, 4222, 5222, 5432, 5672, 6379}

// FuzzDetect runs the whole detection against a peer that sends data on
// every connection: no panic, bounded connections, and nothing unescaped
// or unbounded from the peer in the result.
func FuzzDetect(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), []byte(s))
	}
	names := protocolNames()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		port := fuzzPorts[int(sel)%len(fuzzPorts)]
		var proto string
		if sel&0x80 != 0 {
			proto = names[int(sel>>4)%len(names)]
		}
		opts := Options{
			Protocol: proto, BannerTimeout: time.Millisecond, IOTimeout: 10 * time.Millisecond,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return memConn{r: bytes.NewReader(data)}, nil
			},
		}
		r, err := Detect(context.Background(), net.JoinHostPort("fake.test", strconv.Itoa(port)), opts)
		if err != nil {
			return
		}
		assertSafe(t, r)
		if r.Connections > defaultMaxConnections {
			t.Fatalf("%d connections", r.Connections)
		}
	})
}

// FuzzHandlers runs each protocol's handler and upgrade directly on data.
func FuzzHandlers(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), []byte(s))
	}
	names := protocolNames()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		p := protocols[names[int(sel)%len(names)]]
		// The budget is spent, so handlers that want a second connection skip it.
		d := &detector{addr: "fake.test:1", host: "fake.test", opts: Options{ServerName: "fake.test", MaxConnections: 1}.withDefaults(), dials: 1}
		ctx := context.Background()
		w := newWire(ctx, memConn{r: bytes.NewReader(data)}, time.Millisecond)
		defer w.stop()
		if sel&0x80 != 0 && p.upgrade != nil {
			_ = p.upgrade(ctx, d, w)
			return
		}
		r := newResult(d.addr)
		_ = p.run(ctx, d, &session{w: w, tls: sel&0x40 != 0}, r)
		assertSafe(t, r)
	})
}

func assertSafe(t *testing.T, r *Result) {
	t.Helper()
	for _, s := range []string{r.Banner, r.Version, r.ALPN} {
		if !printable(s) || len(s) > 4*maxShown+3 {
			t.Fatalf("unsafe or unbounded peer text %q", s)
		}
	}
	if r.HSTS != nil && (!printable(r.HSTS.Header) || r.HSTS.MaxAge < 0) {
		t.Fatalf("bad HSTS %+v", r.HSTS)
	}
	for _, f := range r.Findings {
		if !printable(f.Message) || len(f.Message) > 4096 {
			t.Fatalf("unsafe or unbounded message %q", f.Message)
		}
	}
}

func FuzzHSTS(f *testing.F) {
	for _, s := range []string{
		"max-age=31536000; includeSubDomains; preload", `max-age="0"`, "max-age=1;;", "MAX-AGE=5; max-age=6",
		"includeSubDomains", `max-age="1\"2"`, "max-age=99999999999999999999999", "max-age=-1", "max-age=1 x", "; ; max-age=3 ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h, err := parseHSTS(v)
		if err != nil {
			return
		}
		if h.MaxAge < 0 || !printable(h.Header) {
			t.Fatalf("%q parsed to %+v", v, h)
		}
	})
}

func FuzzBER(f *testing.F) {
	f.Add(mustHex(ldapSuccessHex))
	f.Add(mustHex(ldapRefusedHex))
	f.Add(startTLSRequest())
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseLDAPExtendedResponse(b)
		// Whatever the encoder writes, the decoder reads back.
		if len(b) > 0xffff {
			return
		}
		tag, v, rest, err := berNext(berTLV(berOctetString, b))
		if err != nil || tag != berOctetString || !bytes.Equal(v, b) || len(rest) != 0 {
			t.Fatalf("round trip of %d bytes: tag %x err %v", len(b), tag, err)
		}
	})
}

// FuzzParsers feeds the byte-slice parsers directly.
func FuzzParsers(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		switch sel % 9 {
		case 0:
			h, err := parseMySQLHandshake(b)
			if err == nil && !printable(mysqlVersion(h.version)) {
				t.Fatal("unsafe MySQL version")
			}
		case 1:
			_, _ = parseAMQPStart(b)
		case 2:
			f, err := parseXMPPFeatures(b)
			if err == nil && len(f.mechanisms) > 32 {
				t.Fatal("unbounded mechanisms")
			}
		case 3:
			_, _ = parseNATSInfo(b)
		case 4:
			_, _ = parsePGError(b)
		case 5:
			_, _, _ = parseMQTTConnack(b)
		case 6:
			_, _ = parseStatusLine(b)
		case 7:
			_, _, _, _ = parseReplyLine(b)
			_ = keywords(bytes.Split(b, []byte("\n")))
			_ = ftpAuthTLS(bytes.Split(b, []byte("\n")))
		case 8:
			for c := range imapCapabilities(bytes.Split(b, []byte("\n"))) {
				if c == "" {
					t.Fatal("empty capability atom")
				}
			}
			_ = classifyBanner(b, hint{})
		}
	})
}
