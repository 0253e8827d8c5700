package tlsprobe

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/crypto/cryptobyte"
)

// Wire limits. A server's plaintext record carries at most 2^14 bytes
// (RFC 8446 5.1); 2^14+2048 is the largest ciphertext record any version
// allows, so anything longer is not TLS. A handshake message larger than
// maxHandshakeMessage (a certificate chain of a few dozen certificates) is
// refused, and one probe reads at most maxFlightBytes in total.
const (
	maxRecordPayload    = 1<<14 + 2048
	maxHandshakeMessage = 1 << 16
	maxFlightBytes      = 1 << 18
	maxPeerQuote        = 32
)

// Record content types and handshake message types (RFC 8446 B.1, B.3).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22

	typeClientHello       = 1
	typeServerHello       = 2
	typeCertificate       = 11
	typeServerKeyExchange = 12
	typeServerHelloDone   = 14

	extServerName          = 0
	extSupportedGroups     = 10
	extECPointFormats      = 11
	extSignatureAlgorithms = 13
	extSupportedVersions   = 43
	extKeyShare            = 51
	extRenegotiationInfo   = 0xff01

	suiteFallbackSCSV = 0x5600

	alertHandshakeFailure     = 40
	alertInappropriateFallbak = 86
)

// helloRetryRandom marks a ServerHello as a HelloRetryRequest: the
// SHA-256 of "HelloRetryRequest" (RFC 8446 4.1.3).
var helloRetryRandom = sha256.Sum256([]byte("HelloRetryRequest"))

// ErrMalformed is wrapped by every error about bytes the server sent that
// are not valid TLS.
var ErrMalformed = errors.New("malformed server reply")

// quote shows at most maxPeerQuote peer bytes, escaped: a server's bytes
// never reach a log or terminal raw.
func quote(b []byte) string {
	if len(b) > maxPeerQuote {
		return fmt.Sprintf("%q…(%d bytes)", b[:maxPeerQuote], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("tlsprobe: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// keyShare is one TLS 1.3 client key share.
type keyShare struct {
	group uint16
	data  []byte
}

// clientHello describes one probe's ClientHello.
type clientHello struct {
	version    Version // TLS 1.3 is sent as legacy 1.2 plus supported_versions
	suites     []uint16
	groups     []uint16
	keyShares  []keyShare // TLS 1.3 only; empty asks the server to choose (HRR)
	serverName string
	random     [32]byte
	sessionID  []byte // 32 bytes in TLS 1.3 (middlebox compatibility)
}

// marshal encodes the hello as one plaintext handshake record.
func (h *clientHello) marshal() ([]byte, error) {
	legacy := h.version
	if legacy > VersionTLS12 {
		legacy = VersionTLS12
	}
	var b cryptobyte.Builder
	b.AddUint8(typeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(legacy))
		b.AddBytes(h.random[:])
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.sessionID) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range h.suites {
				b.AddUint16(s)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // null compression only
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { h.addExtensions(b) })
	})
	msg, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tlsprobe: build ClientHello: %w", err)
	}
	// Record version 1.0 (1.3's legacy_record_version too) is what servers
	// tolerate best; SSLv3-only servers get 3.0.
	recVersion := VersionTLS10
	if h.version == VersionSSL30 {
		recVersion = VersionSSL30
	}
	rec := []byte{recordHandshake, byte(recVersion >> 8), byte(recVersion), byte(len(msg) >> 8), byte(len(msg))}
	return append(rec, msg...), nil
}

func (h *clientHello) addExtensions(b *cryptobyte.Builder) {
	ext := func(typ uint16, body func(*cryptobyte.Builder)) {
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(body)
	}
	if h.serverName != "" && net.ParseIP(h.serverName) == nil {
		ext(extServerName, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(0) // host_name
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.serverName)) })
			})
		})
	}
	if len(h.groups) > 0 {
		ext(extSupportedGroups, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, g := range h.groups {
					b.AddUint16(g)
				}
			})
		})
	}
	if h.version < VersionTLS13 {
		ext(extECPointFormats, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // uncompressed
		})
		// An empty renegotiation_info asks the server to show RFC 5746 support.
		ext(extRenegotiationInfo, func(b *cryptobyte.Builder) { b.AddUint8(0) })
	}
	if h.version >= VersionTLS12 {
		ext(extSignatureAlgorithms, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, s := range signatureSchemes {
					b.AddUint16(s)
				}
			})
		})
	}
	if h.version == VersionTLS13 {
		ext(extSupportedVersions, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(VersionTLS13)) })
		})
		ext(extKeyShare, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, ks := range h.keyShares {
					b.AddUint16(ks.group)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ks.data) })
				}
			})
		})
	}
}

// Alert is a TLS alert the server sent.
type Alert struct {
	Level       uint8 `json:"level"`
	Description uint8 `json:"description"`
}

func (a Alert) Error() string {
	return fmt.Sprintf("tlsprobe: server sent alert %d (level %d)", a.Description, a.Level)
}

// ServerHello is the part of a ServerHello (or HelloRetryRequest) a scan
// needs (RFC 8446 4.1.3, RFC 5246 7.4.1.3).
type ServerHello struct {
	LegacyVersion Version
	// Version is the negotiated version: supported_versions if present,
	// otherwise the legacy field.
	Version Version
	Suite   uint16
	// Group is the key_share group (TLS 1.3), or for a retry request the
	// group the server asks for. Zero when absent.
	Group       uint16
	Retry       bool // a HelloRetryRequest
	SecureReneg bool // renegotiation_info present (RFC 5746)
	Compression uint8
}

// ParseServerHello parses a ServerHello handshake body (without the
// 4-byte handshake header).
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	var (
		sh        ServerHello
		version   uint16
		random    []byte
		sessionID cryptobyte.String
	)
	if !s.ReadUint16(&version) || !s.ReadBytes(&random, 32) || !s.ReadUint8LengthPrefixed(&sessionID) ||
		len(sessionID) > 32 || !s.ReadUint16(&sh.Suite) || !s.ReadUint8(&sh.Compression) {
		return nil, malformed("ServerHello too short or inconsistent: %s", quote(body))
	}
	sh.LegacyVersion, sh.Version = Version(version), Version(version)
	sh.Retry = bytes.Equal(random, helloRetryRandom[:])
	if s.Empty() {
		return &sh, nil // SSLv3 and early TLS servers may send no extensions
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, malformed("ServerHello extensions block is inconsistent")
	}
	seen := map[uint16]bool{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, malformed("ServerHello extension is truncated")
		}
		if seen[typ] {
			return nil, malformed("ServerHello repeats extension %d", typ)
		}
		seen[typ] = true
		switch typ {
		case extSupportedVersions:
			var v uint16
			if !data.ReadUint16(&v) || !data.Empty() {
				return nil, malformed("ServerHello supported_versions is not one version")
			}
			sh.Version = Version(v)
		case extKeyShare:
			// A retry request names only the group; a ServerHello adds the share.
			if !data.ReadUint16(&sh.Group) {
				return nil, malformed("ServerHello key_share is truncated")
			}
			if !sh.Retry {
				var share cryptobyte.String
				if !data.ReadUint16LengthPrefixed(&share) || len(share) == 0 {
					return nil, malformed("ServerHello key_share has no key")
				}
			}
			if !data.Empty() {
				return nil, malformed("ServerHello key_share has trailing bytes")
			}
		case extRenegotiationInfo:
			sh.SecureReneg = true
		}
	}
	return &sh, nil
}

// ParseCertificate parses a TLS 1.2-and-earlier Certificate body into DER
// certificates, leaf first (RFC 5246 7.4.2). The certificates are not
// parsed here: the caller decides what to do with them.
func ParseCertificate(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, malformed("Certificate message length is inconsistent")
	}
	var chain [][]byte
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) || len(der) == 0 {
			return nil, malformed("Certificate entry is truncated or empty")
		}
		chain = append(chain, bytes.Clone(der))
	}
	return chain, nil
}

// ServerKeyExchange holds what a ServerKeyExchange reveals about the key
// exchange (RFC 5246 7.4.3, RFC 8422 5.4). The signature is not checked:
// the probe never finishes the handshake.
type ServerKeyExchange struct {
	// DHPrimeBits is the size of the DHE prime p, for DHE suites.
	DHPrimeBits int
	// Curve is the named curve, for ECDHE suites.
	Curve uint16
	// RSAModulusBits is the temporary RSA key of an export suite.
	RSAModulusBits int
}

// ParseServerKeyExchange parses a ServerKeyExchange body for a suite with
// key exchange kex; export says whether an RSA suite is an export one.
func ParseServerKeyExchange(body []byte, kex KeyExchange, export bool) (*ServerKeyExchange, error) {
	s := cryptobyte.String(body)
	var ske ServerKeyExchange
	switch {
	case kex == KexDHE:
		var p, g, ys cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&p) || !s.ReadUint16LengthPrefixed(&g) || !s.ReadUint16LengthPrefixed(&ys) ||
			len(p) == 0 || len(g) == 0 || len(ys) == 0 {
			return nil, malformed("DHE ServerKeyExchange is truncated")
		}
		ske.DHPrimeBits = bitLen(p)
	case kex == KexECDHE:
		var curveType uint8
		var point cryptobyte.String
		if !s.ReadUint8(&curveType) {
			return nil, malformed("ECDHE ServerKeyExchange is empty")
		}
		if curveType != 3 { // named_curve; explicit curves are long gone (RFC 8422 5.4)
			return nil, malformed("ECDHE ServerKeyExchange uses curve type %d, not named_curve", curveType)
		}
		if !s.ReadUint16(&ske.Curve) || !s.ReadUint8LengthPrefixed(&point) || len(point) == 0 {
			return nil, malformed("ECDHE ServerKeyExchange is truncated")
		}
	case kex == KexRSA && export:
		var mod, exp cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&mod) || !s.ReadUint16LengthPrefixed(&exp) || len(mod) == 0 {
			return nil, malformed("export RSA ServerKeyExchange is truncated")
		}
		ske.RSAModulusBits = bitLen(mod)
	default:
		return nil, malformed("unexpected ServerKeyExchange for %s key exchange", kex)
	}
	return &ske, nil
}

// bitLen is the bit length of a big-endian unsigned integer.
func bitLen(b []byte) int {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0
	}
	n := (len(b) - 1) * 8
	for x := b[0]; x != 0; x >>= 1 {
		n++
	}
	return n
}

// flight is what a probe learned from the server's first flight.
type flight struct {
	alert *Alert
	hello *ServerHello
	chain [][]byte
	ske   []byte // raw: parsing needs the chosen suite
}

// handshakeReader reads plaintext records from a server and hands out
// whole handshake messages, within the limits above.
type handshakeReader struct {
	r     io.Reader
	read  int
	buf   []byte // handshake bytes not yet returned as a message
	alert *Alert
}

func (hr *handshakeReader) readFull(p []byte) error {
	if hr.read+len(p) > maxFlightBytes {
		return malformed("server sent more than %d bytes before finishing its hello flight", maxFlightBytes)
	}
	n, err := io.ReadFull(hr.r, p)
	hr.read += n
	return err
}

// next returns the next handshake message, or an *Alert error if the
// server sent an alert first. io.EOF means the server closed cleanly.
func (hr *handshakeReader) next() (typ uint8, body []byte, err error) {
	for {
		if len(hr.buf) >= 4 {
			n := int(hr.buf[1])<<16 | int(hr.buf[2])<<8 | int(hr.buf[3])
			if n > maxHandshakeMessage {
				return 0, nil, malformed("handshake message type %d of %d bytes exceeds %d", hr.buf[0], n, maxHandshakeMessage)
			}
			if len(hr.buf) >= 4+n {
				typ, body = hr.buf[0], hr.buf[4:4+n]
				hr.buf = hr.buf[4+n:]
				return typ, body, nil
			}
		}
		var hdr [5]byte
		if err := hr.readFull(hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && hr.read > 0 {
				return 0, nil, malformed("record header cut short")
			}
			return 0, nil, err
		}
		if hdr[0]&0x80 != 0 {
			return 0, nil, malformed("server answered in the SSL 2.0 record format: %s", quote(hdr[:]))
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if hdr[1] != 3 || n > maxRecordPayload {
			return 0, nil, malformed("not a TLS record: %s", quote(hdr[:]))
		}
		payload := make([]byte, n)
		if err := hr.readFull(payload); err != nil {
			return 0, nil, malformed("record of %d bytes cut short: %v", n, err)
		}
		switch hdr[0] {
		case recordHandshake:
			if n == 0 {
				return 0, nil, malformed("empty handshake record")
			}
			hr.buf = append(hr.buf, payload...)
		case recordAlert:
			if n != 2 || len(hr.buf) != 0 {
				return 0, nil, malformed("alert record of %d bytes: %s", n, quote(payload))
			}
			a := Alert{Level: payload[0], Description: payload[1]}
			return 0, nil, a
		case recordChangeCipherSpec:
			// TLS 1.3 middlebox compatibility (RFC 8446 D.4); skip it.
		default:
			return 0, nil, malformed("unexpected record type %d", hdr[0])
		}
	}
}

// readFlight reads the server's answer to a ClientHello: an alert, or a
// ServerHello and, for TLS 1.2 and earlier, the messages up to
// ServerHelloDone. It stops at the first encrypted part (TLS 1.3).
func readFlight(r io.Reader) (*flight, error) {
	hr := &handshakeReader{r: r}
	f := &flight{}
	for {
		typ, body, err := hr.next()
		var a Alert
		if errors.As(err, &a) {
			f.alert = &a
			return f, nil
		}
		if err != nil {
			if f.hello == nil {
				return f, err
			}
			return f, fmt.Errorf("tlsprobe: after ServerHello: %w", err)
		}
		if f.hello == nil {
			if typ != typeServerHello {
				return f, malformed("first handshake message is type %d, not ServerHello", typ)
			}
			if f.hello, err = ParseServerHello(body); err != nil {
				return f, err
			}
			if f.hello.Retry || f.hello.Version >= VersionTLS13 {
				return f, nil
			}
			continue
		}
		switch typ {
		case typeCertificate:
			if f.chain, err = ParseCertificate(body); err != nil {
				return f, err
			}
		case typeServerKeyExchange:
			f.ske = bytes.Clone(body)
		case typeServerHelloDone:
			return f, nil
		}
	}
}
