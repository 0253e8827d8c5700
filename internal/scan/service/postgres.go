package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
)

// PostgreSQL frontend/backend protocol 3.0: SSLRequest and StartupMessage
// (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL)
// and PostgreSQL 17 direct TLS (a ClientHello with ALPN "postgresql").

const (
	pgSSLRequestCode = 80877103 // 1234 << 16 | 5679
	pgProtocol30     = 196608   // 3 << 16
	pgProbeUser      = "certwright_scan"
)

func pgSSLRequest() []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), pgSSLRequestCode)
}

func pgStartup() []byte {
	body := binary.BigEndian.AppendUint32(nil, pgProtocol30)
	for _, kv := range []string{"user", pgProbeUser, "database", pgProbeUser, "application_name", "certwright-scan"} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)
}

// readPGMessage reads one backend message: type byte, int32 length, body.
func readPGMessage(w *wire) (byte, []byte, error) {
	head, err := w.readFull(5)
	if err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(head[1:]))
	if n < 4 || n-4 > maxPacket {
		return 0, nil, notThis("message length %d", n)
	}
	body, err := w.readFull(n - 4)
	return head[0], body, err
}

// parsePGError splits an ErrorResponse body into its fields
// (S severity, C SQLSTATE, M message, ...).
func parsePGError(b []byte) (map[byte][]byte, error) {
	fields := map[byte][]byte{}
	for len(b) > 0 && b[0] != 0 {
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return fields, errors.New("service: PostgreSQL error field without terminator")
		}
		fields[b[0]] = b[1 : 1+end]
		b = b[2+end:]
	}
	return fields, nil
}

func runPostgres(ctx context.Context, d *detector, s *session, r *Result) error {
	if s.tls {
		// TLS without ALPN "postgresql": a terminating proxy; ask directly.
		if err := s.w.write(pgStartup()); err != nil {
			return err
		}
		typ, _, err := readPGMessage(s.w)
		if err != nil || (typ != 'R' && typ != 'E') {
			return notThis("no PostgreSQL reply to a startup message")
		}
		r.Protocol = ProtoPostgreSQL
		return nil
	}
	if err := s.w.write(pgSSLRequest()); err != nil {
		return err
	}
	b, err := s.w.readFull(1)
	if err != nil {
		return err
	}
	switch b[0] {
	case 'S':
		r.Protocol = ProtoPostgreSQL
		r.Encryption = EncryptionStartTLS
		d.postgresPlaintext(ctx, r)
		d.postgresDirectTLS(ctx, r)
	case 'N':
		r.Protocol = ProtoPostgreSQL
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The PostgreSQL server at %s answers SSLRequest with 'N': it has no TLS, so passwords and queries cross the network in the clear (set ssl = on).", d.addr)
	case 'E':
		// Servers before 7.2 do not know SSLRequest and send an error.
		r.Protocol = ProtoPostgreSQL
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The PostgreSQL server at %s answers SSLRequest with an error: it does not support TLS.", d.addr)
	default:
		return notThis("SSLRequest answered with byte 0x%02x", b[0])
	}
	return nil
}

// postgresPlaintext checks on a new connection whether the server takes a
// startup message without TLS: an authentication request, or an error that
// is not pg_hba.conf refusing the unencrypted connection, means it does.
func (d *detector) postgresPlaintext(ctx context.Context, r *Result) {
	w, err := d.open(ctx)
	if err != nil {
		return
	}
	defer w.close()
	if w.write(pgStartup()) != nil {
		return
	}
	typ, body, err := readPGMessage(w)
	if err != nil {
		return
	}
	var answer string
	switch typ {
	case 'R':
		answer = "an authentication request"
	case 'E':
		fields, _ := parsePGError(body)
		if bytes.Contains(fields['M'], []byte("pg_hba.conf")) {
			return // refused without TLS, as it should be
		}
		answer = "the error " + quoted(fields['M'])
	default:
		return
	}
	r.Encryption = EncryptionOptional
	r.add(CodeTLSOptional, SeverityMedium,
		"The PostgreSQL server at %s also accepts sessions without TLS (a startup message without SSLRequest got %s); require TLS with hostssl lines in pg_hba.conf.",
		d.addr, answer)
}

// postgresDirectTLS notes PostgreSQL 17's direct TLS negotiation.
func (d *detector) postgresDirectTLS(ctx context.Context, r *Result) {
	w, err := d.open(ctx)
	if err != nil {
		return
	}
	defer w.close()
	tc := tls.Client(&bufConn{Conn: w.conn, r: w.r}, d.tlsConfig([]string{"postgresql"}))
	if w.arm(d.opts.IOTimeout) != nil || tc.HandshakeContext(ctx) != nil {
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == "postgresql" {
		r.add(CodePostgresDirectTLS, SeverityInfo, "The PostgreSQL server at %s also accepts direct TLS (ALPN \"postgresql\", PostgreSQL 17 sslnegotiation=direct).", d.addr)
	}
}

func upgradePostgres(_ context.Context, _ *detector, w *wire) error {
	if err := w.write(pgSSLRequest()); err != nil {
		return fmt.Errorf("SSLRequest: %w", err)
	}
	b, err := w.readFull(1)
	if err != nil {
		return fmt.Errorf("SSLRequest: %w", err)
	}
	if b[0] != 'S' {
		return fmt.Errorf("SSLRequest: server answered %s, not 'S'", quoted(b))
	}
	return nil
}
