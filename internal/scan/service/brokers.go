package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// --- Redis (RESP, https://redis.io/docs/latest/develop/reference/protocol-spec/) ---

func runRedis(_ context.Context, d *detector, s *session, r *Result) error {
	if err := s.w.writeString("PING\r\n"); err != nil {
		return err
	}
	line, err := s.w.readLine(maxLine)
	if err != nil {
		return err
	}
	pong := bytes.Equal(line, []byte("+PONG"))
	if !pong && !redisError(line) {
		return notThis("PING answered with %s", quoted(line))
	}
	r.Protocol = ProtoRedis
	if pong {
		if v, err := redisVersion(s.w); err == nil {
			r.Version = shown(v)
		}
	} else {
		r.Banner = shown(line)
	}
	if !s.tls {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The Redis server at %s answers in plaintext: commands, data and the AUTH password cross the network in the clear (Redis serves TLS only on a separate tls-port).", d.addr)
	}
	switch {
	case pong:
		r.add(CodeUnauthenticated, SeverityHigh, "The Redis server at %s answers PING without authentication: anyone who reaches it can read and change its data.", d.addr)
	case bytes.HasPrefix(line, []byte("-NOAUTH")):
		// Authentication required: the expected answer.
	default:
		r.add(CodeServiceRefused, SeverityInfo, "The Redis server at %s answered PING with %s.", d.addr, quoted(line))
	}
	return nil
}

// redisError recognises a RESP simple error: "-" then an upper-case code.
func redisError(line []byte) bool {
	return len(line) > 1 && line[0] == '-' && line[1] >= 'A' && line[1] <= 'Z'
}

// redisVersion asks INFO server and returns redis_version.
func redisVersion(w *wire) ([]byte, error) {
	if err := w.writeString("INFO server\r\n"); err != nil {
		return nil, err
	}
	head, err := w.readLine(maxLine)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(string(bytes.TrimPrefix(head, []byte("$"))))
	if len(head) == 0 || head[0] != '$' || err != nil || n < 0 || n > maxPacket {
		return nil, notThis("INFO answered with %s", quoted(head))
	}
	body, err := w.readFull(n + 2)
	if err != nil {
		return nil, err
	}
	return infoField(body, "redis_version:")
}

func infoField(body []byte, key string) ([]byte, error) {
	for line := range bytes.Lines(body) {
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			return bytes.TrimRight(v, "\r\n"), nil
		}
	}
	return nil, fmt.Errorf("service: no %s in INFO", key)
}

// --- AMQP 0-9-1 (https://www.rabbitmq.com/resources/specs/amqp0-9-1.pdf, sections 4.2.2-4.2.3) ---

const (
	amqpFrameMethod  = 1
	amqpFrameEnd     = 0xce
	amqpClassConn    = 10
	amqpMethodStart  = 10
	amqpMaxTableSize = maxPacket
)

var amqpHeader = []byte("AMQP\x00\x00\x09\x01")

type amqpStart struct {
	major, minor byte
	props        map[string][]byte // string-valued server properties
	mechanisms   []byte
}

// amqpFieldSize gives the size of a field value of the given type, or -1
// for long-string-like values that carry a 4-byte length.
var amqpFieldSize = map[byte]int{
	't': 1, 'b': 1, 'B': 1, 's': 2, 'u': 2, 'I': 4, 'i': 4, 'f': 4,
	'l': 8, 'L': 8, 'd': 8, 'T': 8, 'D': 5, 'V': 0,
	'S': -1, 'x': -1, 'F': -1, 'A': -1,
}

var errAMQP = errors.New("service: malformed AMQP frame")

func amqpLong(b []byte) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errAMQP
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, errAMQP
	}
	return b[4 : 4+n], b[4+n:], nil
}

// parseAMQPTable keeps the top-level string fields of a field table.
func parseAMQPTable(b []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 2+n {
			return out, errAMQP
		}
		name, typ := string(b[1:1+n]), b[1+n]
		b = b[2+n:]
		size, ok := amqpFieldSize[typ]
		switch {
		case !ok:
			return out, fmt.Errorf("%w: field type 0x%02x", errAMQP, typ)
		case size < 0:
			v, rest, err := amqpLong(b)
			if err != nil {
				return out, err
			}
			if typ == 'S' && len(out) < 64 {
				out[name] = v
			}
			b = rest
		case len(b) < size:
			return out, errAMQP
		default:
			b = b[size:]
		}
	}
	return out, nil
}

// parseAMQPStart decodes a Connection.Start method frame payload.
func parseAMQPStart(p []byte) (amqpStart, error) {
	var s amqpStart
	if len(p) < 6 || binary.BigEndian.Uint16(p) != amqpClassConn || binary.BigEndian.Uint16(p[2:]) != amqpMethodStart {
		return s, fmt.Errorf("%w: not Connection.Start", errAMQP)
	}
	s.major, s.minor = p[4], p[5]
	table, rest, err := amqpLong(p[6:])
	if err != nil {
		return s, err
	}
	if s.props, err = parseAMQPTable(table); err != nil {
		return s, err
	}
	if s.mechanisms, rest, err = amqpLong(rest); err != nil {
		return s, err
	}
	_, _, err = amqpLong(rest) // locales
	return s, err
}

func runAMQP(_ context.Context, d *detector, s *session, r *Result) error {
	if err := s.w.write(amqpHeader); err != nil {
		return err
	}
	head, err := s.w.readFull(7)
	if err != nil {
		return err
	}
	if bytes.HasPrefix(head, []byte("AMQP")) {
		last, err := s.w.readFull(1)
		if err != nil {
			return err
		}
		r.Protocol = ProtoAMQP
		r.add(CodeServiceRefused, SeverityInfo, "The AMQP broker at %s does not speak AMQP 0-9-1; it answered with protocol header %v.", d.addr, append(head[4:], last...))
		return nil
	}
	size := int(binary.BigEndian.Uint32(head[3:]))
	if head[0] != amqpFrameMethod || binary.BigEndian.Uint16(head[1:]) != 0 || size > maxPacket {
		return notThis("AMQP header answered with %s", quoted(head))
	}
	body, err := s.w.readFull(size + 1)
	if err != nil {
		return err
	}
	if body[size] != amqpFrameEnd {
		return notThis("AMQP frame without frame-end octet")
	}
	start, err := parseAMQPStart(body[:size])
	if err != nil {
		return notThis("%v", err)
	}
	r.Protocol = ProtoAMQP
	r.Version = shown(bytes.TrimSpace(bytes.Join([][]byte{start.props["product"], start.props["version"]}, []byte(" "))))
	r.Banner = fmt.Sprintf("AMQP %d-%d, mechanisms %s", start.major, start.minor, shown(start.mechanisms))
	if !s.tls {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The AMQP broker at %s speaks AMQP 0-9-1 in plaintext (SASL %s): credentials and messages cross the network in the clear (AMQP has no STARTTLS; use the TLS listener, 5671).",
			d.addr, quoted(start.mechanisms))
	}
	return nil
}

// --- MQTT 3.1.1 (https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html, sections 3.1-3.2) ---

const (
	mqttConnect     = 0x10
	mqttConnack     = 0x20
	mqttDisconnect  = 0xe0
	mqttLevel311    = 4
	mqttCleanFlag   = 0x02
	mqttKeepAlive   = 30
	mqttMaxConnack  = 256
	mqttClientIDLen = 4 // random bytes; hex doubles them
)

// mqttReturnCodes names CONNACK return codes (MQTT 3.1.1 table 3.1).
var mqttReturnCodes = map[byte]string{
	0: "accepted", 1: "unacceptable protocol version", 2: "identifier rejected",
	3: "server unavailable", 4: "bad user name or password", 5: "not authorized",
}

// mqttConnectPacket builds a clean-session CONNECT. The client identifier
// is random so that the probe never takes over a real client's session.
func mqttConnectPacket() ([]byte, error) {
	id := make([]byte, mqttClientIDLen)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	client := "certwright-" + hex.EncodeToString(id)
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', mqttLevel311, mqttCleanFlag, 0, mqttKeepAlive}
	vh = binary.BigEndian.AppendUint16(vh, uint16(len(client)))
	vh = append(vh, client...)
	return append([]byte{mqttConnect, byte(len(vh))}, vh...), nil
}

// parseMQTTConnack reads the variable header of a CONNACK.
func parseMQTTConnack(body []byte) (sessionPresent bool, code byte, err error) {
	if len(body) < 2 {
		return false, 0, errors.New("service: MQTT CONNACK shorter than 2 bytes")
	}
	return body[0]&1 == 1, body[1], nil
}

// readMQTTRemaining decodes the variable-length "remaining length".
func readMQTTRemaining(w *wire) (int, error) {
	n, mult := 0, 1
	for range 4 {
		b, err := w.readFull(1)
		if err != nil {
			return 0, err
		}
		n += int(b[0]&0x7f) * mult
		if b[0]&0x80 == 0 {
			return n, nil
		}
		mult <<= 7
	}
	return 0, notThis("MQTT remaining length over 4 bytes")
}

func runMQTT(_ context.Context, d *detector, s *session, r *Result) error {
	pkt, err := mqttConnectPacket()
	if err != nil {
		return err
	}
	if err := s.w.write(pkt); err != nil {
		return err
	}
	typ, err := s.w.readFull(1)
	if err != nil {
		return err
	}
	if typ[0] != mqttConnack {
		return notThis("CONNECT answered with packet type 0x%02x", typ[0])
	}
	n, err := readMQTTRemaining(s.w)
	if err != nil {
		return err
	}
	if n > mqttMaxConnack {
		return notThis("MQTT CONNACK of %d bytes", n)
	}
	body, err := s.w.readFull(n)
	if err != nil {
		return err
	}
	_, code, err := parseMQTTConnack(body)
	if err != nil {
		return notThis("%v", err)
	}
	r.Protocol = ProtoMQTT
	name, ok := mqttReturnCodes[code]
	if !ok {
		name = "unknown"
	}
	r.Banner = fmt.Sprintf("CONNACK %d (%s)", code, name)
	if !s.tls {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The MQTT broker at %s answers in plaintext: credentials and messages cross the network in the clear (use the TLS listener, 8883).", d.addr)
	}
	if code == 0 {
		_ = s.w.write([]byte{mqttDisconnect, 0})
		r.add(CodeUnauthenticated, SeverityHigh, "The MQTT broker at %s accepted a CONNECT without user name or password.", d.addr)
	}
	return nil
}

// --- NATS (https://docs.nats.io/reference/reference-protocols/nats-protocol#info) ---

type natsInfo struct {
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	TLSRequired  bool   `json:"tls_required"`
	TLSAvailable bool   `json:"tls_available"`
	AuthRequired bool   `json:"auth_required"`
}

func greetsNATS(b []byte, _ bool) bool { return bytes.HasPrefix(b, []byte("INFO ")) }

func parseNATSInfo(line []byte) (natsInfo, error) {
	var info natsInfo
	rest, ok := bytes.CutPrefix(line, []byte("INFO "))
	if !ok {
		return info, notThis("NATS greeting %s", quoted(line))
	}
	if err := json.Unmarshal(bytes.TrimSpace(rest), &info); err != nil {
		return info, fmt.Errorf("service: NATS INFO is not JSON: %w", err)
	}
	return info, nil
}

func runNATS(_ context.Context, d *detector, s *session, r *Result) error {
	line, err := s.w.readLine(maxPacket)
	if err != nil {
		return err
	}
	info, err := parseNATSInfo(line)
	if err != nil {
		return err
	}
	r.Protocol = ProtoNATS
	r.Version = shown([]byte(info.Version))
	r.Banner = shown([]byte(info.ServerName))
	if s.tls {
		return nil
	}
	switch {
	case info.TLSRequired:
		r.Encryption = EncryptionStartTLS
	case info.TLSAvailable:
		r.Encryption = EncryptionOptional
		r.add(CodeTLSOptional, SeverityMedium, "The NATS server at %s offers TLS but does not require it (tls_available without tls_required): clients may connect in the clear.", d.addr)
	default:
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The NATS server at %s offers no TLS (neither tls_required nor tls_available in INFO): messages and credentials cross the network in the clear.", d.addr)
	}
	if !info.AuthRequired {
		r.add(CodeUnauthenticated, SeverityHigh, "The NATS server at %s does not require authentication (auth_required absent from INFO).", d.addr)
	}
	return nil
}

// upgradeNATS reads INFO; the client starts TLS right after it.
func upgradeNATS(_ context.Context, _ *detector, w *wire) error {
	line, err := w.readLine(maxPacket)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	info, err := parseNATSInfo(line)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	if !info.TLSRequired && !info.TLSAvailable {
		return errors.New("INFO: server offers no TLS")
	}
	return nil
}
