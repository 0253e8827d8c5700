package validate

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

const userAgent = "Certwright-ACME-validator"

// maxHeaderBytes bounds the response headers of each http-01 hop.
const maxHeaderBytes = 16 << 10

// http01 fetches http://VALUE/.well-known/acme-challenge/TOKEN (RFC 8555
// §8.3), following redirects by hand so that every hop's scheme, port and
// addresses are checked before anything is sent.
//
// Nothing the target sends back reaches the client: a failure says what
// was asked for and the status and length of what came back. The body
// goes to the server's log only, so validation cannot be used to read
// internal HTTP responses.
func (v *Validator) http01(ctx context.Context, at *attempt, id identifier, token, keyAuth string) error {
	if !validToken(token) {
		return newError(typeMalformed, nil, "invalid token %q", clip(token))
	}
	host := id.value
	if id.typ == "ip" && id.ip.Is6() {
		host = "[" + host + "]"
	}
	u := &url.URL{Scheme: "http", Host: host, Path: "/.well-known/acme-challenge/" + token}
	for redirects := 0; ; redirects++ {
		body, next, err := v.fetch(ctx, at, u)
		if err != nil {
			return err
		}
		if next == nil {
			if !KeyAuthorizationMatches(body, keyAuth) {
				v.logBody(ctx, u, http.StatusOK, body)
				return newError(typeIncorrectResponse, nil, "%s: HTTP 200 with a %d-byte body that is not the key authorization %q", u, len(body), keyAuth)
			}
			return nil
		}
		if redirects >= v.maxRedirects {
			return newError(typeConnection, nil, "too many redirects: more than %d, the last from %s", v.maxRedirects, u)
		}
		if err := v.checkRedirect(id, u, next); err != nil {
			return err
		}
		u = next
	}
}

// validToken accepts the base64url alphabet (RFC 8555 §8.1); anything else
// could change the meaning of the challenge URL.
func validToken(token string) bool {
	if token == "" {
		return false
	}
	for _, c := range []byte(token) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// KeyAuthorizationMatches reports whether an http-01 response body is the
// key authorization: RFC 8555 §8.3 lets the server trim surrounding
// whitespace (a trailing newline is common).
func KeyAuthorizationMatches(body []byte, keyAuth string) bool {
	got := bytes.TrimSpace(body)
	return keyAuth != "" && subtle.ConstantTimeCompare(got, []byte(keyAuth)) == 1
}

// logBody records, on the server only, what a target answered, truncated.
func (v *Validator) logBody(ctx context.Context, u *url.URL, status int, body []byte) {
	v.log.LogAttrs(ctx, slog.LevelInfo, "acme http-01 response not accepted",
		slog.String("url", clip(u.String())), slog.Int("status", status), slog.Int("length", len(body)),
		slog.String("body", strconv.Quote(clip(string(body)))))
}

// checkRedirect judges a redirect before it is followed: scheme, port,
// host syntax, and no IP literal other than the identifier being
// validated (a name's addresses are checked when it is looked up).
func (v *Validator) checkRedirect(id identifier, from, to *url.URL) error {
	var want uint16
	switch to.Scheme {
	case "http":
		want = v.httpPort
	case "https":
		want = v.tlsPort
	default:
		return newError(typeConnection, nil, "%s redirected to %q: only http and https are allowed", from, clip(to.String()))
	}
	if p := to.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || uint16(n) != want {
			return newError(typeConnection, nil, "%s redirected to %q: port must be absent or %d", from, clip(to.String()), want)
		}
	}
	host := to.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if id.typ != "ip" || addr.WithZone("") != id.ip {
			return newError(typeConnection, nil, "%s redirected to the IP address %s: redirects may name an IP address only when it is the identifier being validated", from, clip(host))
		}
		return nil
	}
	if !validDNSName(strings.ToLower(host)) {
		return newError(typeConnection, nil, "%s redirected to %q: invalid host", from, clip(to.String()))
	}
	return nil
}

// fetch performs one GET. It returns the body of a 200 response, or the
// target of a redirect.
func (v *Validator) fetch(ctx context.Context, at *attempt, u *url.URL) ([]byte, *url.URL, error) {
	port := v.httpPort
	if u.Scheme == "https" {
		port = v.tlsPort
	}
	addrs, err := v.lookup(ctx, u.Hostname())
	if err != nil {
		return nil, nil, err
	}

	// Every hop gets its own transport that can only reach the addresses
	// checked above: no system resolver, no proxy, no connection reuse.
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		// Compression would let a small response expand past MaxBody
		// before we count it.
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return v.dial(ctx, at, addrs, port)
		},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := v.dial(ctx, at, addrs, port)
			if err != nil {
				return nil, err
			}
			// Public CAs do not verify the certificate of an https
			// redirect target: control of port 80 is what is proven.
			tc := tls.Client(conn, &tls.Config{
				ServerName:         u.Hostname(),
				InsecureSkipVerify: true,
				MinVersion:         tls.VersionTLS12,
				NextProtos:         []string{"http/1.1"},
			})
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, netError(ctx, typeTLS, "TLS handshake with "+conn.RemoteAddr().String()+" for "+u.String(), err)
			}
			return tc, nil
		},
	}
	defer tr.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, newError(typeServerInternal, err, "building request for %s: %v", u, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, nil, v.roundTripError(ctx, u, err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return nil, nil, newError(typeConnection, nil, "%s: HTTP %d redirect without a Location header", u, resp.StatusCode)
		}
		next, err := u.Parse(loc)
		if err != nil {
			return nil, nil, newError(typeConnection, nil, "%s: invalid redirect target %q", u, clip(loc))
		}
		return nil, next, nil
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, v.maxBody+1))
	if err != nil {
		return nil, nil, netError(ctx, typeConnection, "reading response from "+u.String(), err)
	}
	if resp.StatusCode != http.StatusOK {
		v.logBody(ctx, u, resp.StatusCode, body)
		return nil, nil, newError(typeIncorrectResponse, nil, "%s: HTTP status %d with a %s body, expected 200", u, resp.StatusCode, bodySize(body, v.maxBody))
	}
	if int64(len(body)) > v.maxBody {
		return nil, nil, newError(typeIncorrectResponse, nil, "%s: response larger than %d bytes", u, v.maxBody)
	}
	return body, nil, nil
}

func bodySize(body []byte, maxBody int64) string {
	if int64(len(body)) > maxBody {
		return fmt.Sprintf("more than %d-byte", maxBody)
	}
	return fmt.Sprintf("%d-byte", len(body))
}

// roundTripError reports a failed request without quoting what the target
// sent: net/http's parse errors repeat the offending status line or
// header, which would hand internal responses to the client. Errors from
// the network itself (refused, reset, timed out, denied) are kept.
func (v *Validator) roundTripError(ctx context.Context, u *url.URL, err error) error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if ctx.Err() != nil {
		return netError(ctx, typeConnection, "GET "+u.String(), err)
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return netError(ctx, typeConnection, "GET "+u.String(), err)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return netError(ctx, typeConnection, "GET "+u.String(), err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return newError(typeConnection, err, "GET %s: connection closed before a complete HTTP response", u)
	}
	v.log.LogAttrs(ctx, slog.LevelInfo, "acme http-01 malformed response",
		slog.String("url", clip(u.String())), slog.String("err", clip(err.Error())))
	return newError(typeConnection, err, "GET %s: the response is not valid HTTP/1.1", u)
}
