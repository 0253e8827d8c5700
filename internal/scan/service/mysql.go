package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// MySQL/MariaDB initial handshake and SSLRequest
// (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets.html).

const (
	mysqlClientLongPassword = 0x00000001
	mysqlClientProtocol41   = 0x00000200
	mysqlClientSSL          = 0x00000800
	mysqlClientSecureConn   = 0x00008000
	mysqlErrPacket          = 0xff
	mysqlMaxHandshake       = 4096
	mysqlMaxPacketSize      = 1 << 24
	mysqlDefaultCharset     = 33 // utf8_general_ci
	mysqlSSLRequestLen      = 32
	// MariaDB prefixes its version with "5.5.5-" so old clients accept it.
	mariaDBVersionPrefix = "5.5.5-"
)

// greetsMySQL recognises a handshake packet header: 3-byte length,
// sequence 0, then protocol 10 or 9, or an error packet.
func greetsMySQL(b []byte, _ bool) bool {
	if len(b) < 5 || b[3] != 0 {
		return false
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	return n > 0 && n <= mysqlMaxHandshake && (b[4] == 10 || b[4] == 9 || b[4] == mysqlErrPacket)
}

type mysqlHandshake struct {
	protocol byte
	version  []byte
	caps     uint32
	charset  byte
	errCode  int
	errMsg   []byte
}

var errMySQLShort = errors.New("service: MySQL handshake packet too short")

func parseMySQLHandshake(p []byte) (mysqlHandshake, error) {
	var h mysqlHandshake
	if len(p) == 0 {
		return h, errMySQLShort
	}
	h.protocol = p[0]
	switch p[0] {
	case mysqlErrPacket:
		if len(p) < 3 {
			return h, errMySQLShort
		}
		h.errCode = int(binary.LittleEndian.Uint16(p[1:3]))
		msg := p[3:]
		if len(msg) >= 6 && msg[0] == '#' {
			msg = msg[6:] // SQL state marker and state
		}
		h.errMsg = msg
		return h, nil
	case 9, 10:
	default:
		return h, fmt.Errorf("service: MySQL protocol version %d unknown", p[0])
	}
	end := bytes.IndexByte(p[1:], 0)
	if end < 0 {
		return h, errMySQLShort
	}
	h.version = p[1 : 1+end]
	if h.protocol == 9 {
		return h, nil // protocol 9 has no capability flags, so no TLS
	}
	rest := p[2+end:]
	// connection id (4), auth data part 1 (8), filler (1), capabilities low (2)
	if len(rest) < 15 {
		return h, errMySQLShort
	}
	h.caps = uint32(binary.LittleEndian.Uint16(rest[13:15]))
	rest = rest[15:]
	// character set (1), status (2), capabilities high (2)
	if len(rest) >= 5 {
		h.charset = rest[0]
		h.caps |= uint32(binary.LittleEndian.Uint16(rest[3:5])) << 16
	}
	return h, nil
}

func readMySQLPacket(w *wire) (byte, []byte, error) {
	head, err := w.readFull(4)
	if err != nil {
		return 0, nil, err
	}
	n := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
	if n == 0 || n > mysqlMaxHandshake {
		return 0, nil, notThis("MySQL packet of %d bytes", n)
	}
	body, err := w.readFull(n)
	return head[3], body, err
}

func mysqlVersion(v []byte) string {
	return shown(bytes.TrimPrefix(v, []byte(mariaDBVersionPrefix)))
}

func runMySQL(_ context.Context, d *detector, s *session, r *Result) error {
	_, p, err := readMySQLPacket(s.w)
	if err != nil {
		return err
	}
	h, err := parseMySQLHandshake(p)
	if err != nil {
		return notThis("%v", err)
	}
	r.Protocol = ProtoMySQL
	if h.protocol == mysqlErrPacket {
		r.add(CodeServiceRefused, SeverityInfo, "The MySQL server at %s refused the connection: error %d %s.", d.addr, h.errCode, quoted(h.errMsg))
		return nil
	}
	r.Version = mysqlVersion(h.version)
	r.Banner = fmt.Sprintf("protocol %d, server %s", h.protocol, r.Version)
	if s.tls {
		return nil
	}
	if h.caps&mysqlClientSSL == 0 {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The MySQL server at %s does not offer TLS (CLIENT_SSL is absent from its handshake): queries and results cross the network in the clear.", d.addr)
		return nil
	}
	r.Encryption = EncryptionStartTLS
	return nil
}

// mysqlSSLRequest is the short HandshakeResponse that asks for TLS.
func mysqlSSLRequest(seq, charset byte) []byte {
	if charset == 0 {
		charset = mysqlDefaultCharset
	}
	p := []byte{mysqlSSLRequestLen, 0, 0, seq + 1}
	p = binary.LittleEndian.AppendUint32(p, mysqlClientLongPassword|mysqlClientProtocol41|mysqlClientSSL|mysqlClientSecureConn)
	p = binary.LittleEndian.AppendUint32(p, mysqlMaxPacketSize)
	p = append(p, charset)
	return append(p, make([]byte, 23)...)
}

func upgradeMySQL(_ context.Context, _ *detector, w *wire) error {
	seq, p, err := readMySQLPacket(w)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	h, err := parseMySQLHandshake(p)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if h.caps&mysqlClientSSL == 0 {
		return errors.New("handshake: server does not offer TLS")
	}
	return w.write(mysqlSSLRequest(seq, h.charset))
}
