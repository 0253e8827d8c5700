package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// A CLI sign-in is bound to the server the CLI talks to: the CLI makes a
// random binder and puts into its sign-in, as the OpenID nonce, a digest
// of the server's origin and the binder; it shows the server the ID token
// and the binder. The server computes the digest from the origin it was
// reached at (its own name, from Host) and the binder: an ID token the CLI
// obtained while talking to another server (a rogue, or staging sharing
// the provider's registration) does not match, so whoever it was shown to
// cannot exchange it here.

// bindingLabel separates the binding's digest from every other use of
// SHA-256 with the same inputs.
const bindingLabel = "certwright cli sign-in v1"

// binderBytes is the binder's size: 256 random bits.
const binderBytes = 32

// Binding ties a CLI sign-in to one server.
type Binding struct {
	// Origin is the server's canonical "host:port" (see Origin).
	Origin string
	// Binder is 256 random bits, base64url without padding.
	Binder string
}

// NewBinding makes a fresh binder for a sign-in at the server reached at
// hostport (a URL's host, the port 443 when absent).
func NewBinding(hostport string) (Binding, error) {
	origin, err := Origin(hostport)
	if err != nil {
		return Binding{}, err
	}
	b := make([]byte, binderBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return Binding{Origin: origin, Binder: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// Nonce is the OpenID nonce that binds a sign-in to b: base64url of
// SHA-256(label 0x00 origin 0x00 binder), the binder as its 32 bytes.
func (b Binding) Nonce() (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(b.Binder)
	if err != nil || len(raw) != binderBytes {
		return "", errors.New("oidc: the binder is not 32 bytes in base64url without padding")
	}
	if b.Origin == "" {
		return "", errors.New("oidc: a binding needs the server's origin")
	}
	h := sha256.New()
	h.Write([]byte(bindingLabel + "\x00" + b.Origin + "\x00"))
	h.Write(raw)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}

// matches reports whether nonce binds a sign-in to b (in constant time).
func (b Binding) matches(nonce string) bool {
	want, err := b.Nonce()
	return err == nil && subtle.ConstantTimeCompare([]byte(nonce), []byte(want)) == 1
}

// maxOrigin bounds a host:port before it is parsed.
const maxOrigin = 300

// Origin returns hostport as the binding names a server: the host in
// lower case (an IP address in its canonical form, IPv6 in brackets), a
// colon and the port, 443 when there is none (Certwright is reached over
// https only). The CLI passes its server URL's host, the server its
// request's Host; both get the same string for the same server.
func Origin(hostport string) (string, error) {
	if hostport == "" || len(hostport) > maxOrigin {
		return "", errors.New("oidc: no usable server name (host[:port])")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if port == "" {
		port = "443"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("oidc: %q has no usable port", hostport)
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("oidc: %q: an address with a zone names no server", hostport)
		}
		host = ip.Unmap().String()
	} else if !hostName(host) {
		return "", errors.New("oidc: the server name is not a host name or an IP address")
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// hostName accepts lower-case letters, digits, '-', '_' and '.' (DNS
// names as TLS certificates carry them), at most 253 of them.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
