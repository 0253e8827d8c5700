package service

import (
	"context"
	"errors"
	"fmt"
)

// LDAP StartTLS (RFC 4511 sections 4.12 and 4.14) in a minimal BER
// (X.690) encoder and decoder: definite lengths, low tag numbers, bounded
// sizes; enough for one ExtendedRequest and its ExtendedResponse.

const (
	oidStartTLS           = "1.3.6.1.4.1.1466.20037"
	oidNoticeOfDisconnect = "1.3.6.1.4.1.1466.20036"

	berInteger     = 0x02
	berOctetString = 0x04
	berEnumerated  = 0x0a
	berSequence    = 0x30
	ldapExtReq     = 0x77 // [APPLICATION 23] constructed
	ldapExtResp    = 0x78 // [APPLICATION 24] constructed
	ldapReqName    = 0x80 // [0] primitive
	ldapRespName   = 0x8a // [10] primitive
	ldapMessageID  = 1
	maxBERLenBytes = 4
)

var errBER = errors.New("service: malformed BER")

// berTLV encodes one element with a definite length.
func berTLV(tag byte, parts ...[]byte) []byte {
	var content []byte
	for _, p := range parts {
		content = append(content, p...)
	}
	out := []byte{tag}
	switch n := len(content); {
	case n < 0x80:
		out = append(out, byte(n))
	case n <= 0xff:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, content...)
}

func startTLSRequest() []byte {
	return berTLV(berSequence,
		berTLV(berInteger, []byte{ldapMessageID}),
		berTLV(ldapExtReq, berTLV(ldapReqName, []byte(oidStartTLS))))
}

// berLength decodes a definite length from the bytes after a tag and
// returns it with the number of bytes it took.
func berLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: missing length", errBER)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	n := int(b[0] & 0x7f)
	if n == 0 || n > maxBERLenBytes {
		return 0, 0, fmt.Errorf("%w: indefinite or %d-byte length", errBER, n)
	}
	if len(b) < 1+n {
		return 0, 0, fmt.Errorf("%w: truncated length", errBER)
	}
	l := 0
	for _, c := range b[1 : 1+n] {
		l = l<<8 | int(c)
	}
	if l > maxPacket {
		return 0, 0, fmt.Errorf("%w: element of %d bytes", errTooLong, l)
	}
	return l, 1 + n, nil
}

// berNext splits the first element off b.
func berNext(b []byte) (tag byte, value, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: truncated element", errBER)
	}
	if b[0]&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: high tag numbers are not used by LDAP", errBER)
	}
	l, n, err := berLength(b[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	if len(b) < 1+n+l {
		return 0, nil, nil, fmt.Errorf("%w: element longer than its container", errBER)
	}
	return b[0], b[1+n : 1+n+l], b[1+n+l:], nil
}

// berUint decodes a small non-negative INTEGER or ENUMERATED.
func berUint(v []byte) (int, error) {
	if len(v) == 0 || len(v) > 4 || v[0]&0x80 != 0 {
		return 0, fmt.Errorf("%w: integer of %d bytes or negative", errBER, len(v))
	}
	n := 0
	for _, c := range v {
		n = n<<8 | int(c)
	}
	return n, nil
}

// readBER reads one whole element off the wire.
func readBER(w *wire) ([]byte, error) {
	head, err := w.readFull(2)
	if err != nil {
		return nil, err
	}
	if head[0] != berSequence {
		return nil, notThis("first byte 0x%02x is not an LDAPMessage", head[0])
	}
	lenBytes := head[1:]
	if head[1] >= 0x80 {
		n := int(head[1] & 0x7f)
		if n == 0 || n > maxBERLenBytes {
			return nil, fmt.Errorf("%w: indefinite or %d-byte length", errBER, n)
		}
		more, err := w.readFull(n)
		if err != nil {
			return nil, err
		}
		lenBytes = append(lenBytes, more...)
	}
	l, _, err := berLength(lenBytes)
	if err != nil {
		return nil, err
	}
	body, err := w.readFull(l)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(lenBytes)+len(body))
	out = append(out, head[0])
	out = append(out, lenBytes...)
	return append(out, body...), nil
}

// ldapExtendedResponse is the part of an ExtendedResponse Detect uses.
type ldapExtendedResponse struct {
	messageID    int
	resultCode   int
	diagnostic   []byte
	responseName []byte
}

func parseLDAPExtendedResponse(b []byte) (ldapExtendedResponse, error) {
	var resp ldapExtendedResponse
	tag, msg, _, err := berNext(b)
	if err != nil {
		return resp, err
	}
	if tag != berSequence {
		return resp, fmt.Errorf("%w: LDAPMessage tag 0x%02x", errBER, tag)
	}
	tag, v, msg, err := berNext(msg)
	if err != nil {
		return resp, err
	}
	if tag != berInteger {
		return resp, fmt.Errorf("%w: messageID tag 0x%02x", errBER, tag)
	}
	if resp.messageID, err = berUint(v); err != nil {
		return resp, err
	}
	tag, op, _, err := berNext(msg)
	if err != nil {
		return resp, err
	}
	if tag != ldapExtResp {
		return resp, fmt.Errorf("%w: protocolOp 0x%02x is not an ExtendedResponse", errBER, tag)
	}
	// LDAPResult: resultCode, matchedDN, diagnosticMessage, then optional
	// referral [3], responseName [10], responseValue [11].
	tag, v, op, err = berNext(op)
	if err != nil {
		return resp, err
	}
	if tag != berEnumerated {
		return resp, fmt.Errorf("%w: resultCode tag 0x%02x", errBER, tag)
	}
	if resp.resultCode, err = berUint(v); err != nil {
		return resp, err
	}
	for i := range 2 {
		tag, v, op, err = berNext(op)
		if err != nil {
			return resp, err
		}
		if tag != berOctetString {
			return resp, fmt.Errorf("%w: LDAPResult string tag 0x%02x", errBER, tag)
		}
		if i == 1 {
			resp.diagnostic = v
		}
	}
	for len(op) > 0 {
		tag, v, op, err = berNext(op)
		if err != nil {
			return resp, err
		}
		if tag == ldapRespName {
			resp.responseName = v
		}
	}
	return resp, nil
}

// ldapResultNames names the result codes a StartTLS request meets (RFC 4511 appendix A).
var ldapResultNames = map[int]string{
	0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded",
	8: "strongerAuthRequired", 12: "unavailableCriticalExtension", 13: "confidentialityRequired",
	50: "insufficientAccessRights", 51: "busy", 52: "unavailable", 53: "unwillingToPerform", 80: "other",
}

func ldapResultName(code int) string {
	if n, ok := ldapResultNames[code]; ok {
		return fmt.Sprintf("%d %s", code, n)
	}
	return fmt.Sprint(code)
}

func ldapStartTLS(w *wire) (ldapExtendedResponse, error) {
	if err := w.write(startTLSRequest()); err != nil {
		return ldapExtendedResponse{}, err
	}
	b, err := readBER(w)
	if err != nil {
		return ldapExtendedResponse{}, err
	}
	resp, err := parseLDAPExtendedResponse(b)
	if err != nil {
		return resp, notThis("%v", err)
	}
	return resp, nil
}

func runLDAP(_ context.Context, d *detector, s *session, r *Result) error {
	resp, err := ldapStartTLS(s.w)
	if err != nil {
		return err
	}
	r.Protocol = ProtoLDAP
	if s.tls {
		return nil
	}
	if resp.resultCode == 0 && resp.messageID == ldapMessageID {
		r.Encryption = EncryptionStartTLS
		return nil
	}
	r.Encryption = EncryptionNone
	what := "refused StartTLS"
	if string(resp.responseName) == oidNoticeOfDisconnect {
		what = "disconnected on StartTLS"
	}
	r.add(CodeNoTLS, SeverityHigh, "The LDAP server at %s %s (%s, %s): binds and directory data cross the network in the clear.",
		d.addr, what, ldapResultName(resp.resultCode), quoted(resp.diagnostic))
	return nil
}

func upgradeLDAP(_ context.Context, _ *detector, w *wire) error {
	resp, err := ldapStartTLS(w)
	if err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	if resp.resultCode != 0 || resp.messageID != ldapMessageID {
		return fmt.Errorf("StartTLS: server answered %s, %s", ldapResultName(resp.resultCode), quoted(resp.diagnostic))
	}
	return nil
}
