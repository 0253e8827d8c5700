package validate

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
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
func (v *Validator) http01(ctx context.Context, id identifier, token, keyAuth string) error {
	if !validToken(token) {
		return newError(typeMalformed, nil, "invalid token %q", clip(token))
	}
	host := id.value
	if id.typ == "ip" && id.ip.Is6() {
		host = "[" + host + "]"
	}
	u := &url.URL{Scheme: "http", Host: host, Path: "/.well-known/acme-challenge/" + token}
	for redirects := 0; ; redirects++ {
		body, next, err := v.fetch(ctx, u)
		if err != nil {
			return err
		}
		if next == nil {
			got := string(bytes.TrimSpace(body))
			if got != keyAuth {
				return newError(typeIncorrectResponse, nil, "%s: expected %q, got %q", u, keyAuth, clip(got))
			}
			return nil
		}
		if redirects >= v.maxRedirects {
			return newError(typeConnection, nil, "too many redirects: more than %d, the last from %s", v.maxRedirects, u)
		}
		if err := v.checkRedirect(u, next); err != nil {
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

func (v *Validator) checkRedirect(from, to *url.URL) error {
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
	if _, err := netip.ParseAddr(host); err != nil && !validDNSName(strings.ToLower(host)) {
		return newError(typeConnection, nil, "%s redirected to %q: invalid host", from, clip(to.String()))
	}
	return nil
}

// fetch performs one GET. It returns the body of a 200 response, or the
// target of a redirect.
func (v *Validator) fetch(ctx context.Context, u *url.URL) ([]byte, *url.URL, error) {
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
			return dial(ctx, addrs, port)
		},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := dial(ctx, addrs, port)
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
		return nil, nil, netError(ctx, typeConnection, "GET "+u.String(), err)
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

	if resp.StatusCode != http.StatusOK {
		// A snippet of the body is often the quickest hint at what answered.
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, clipLen+1))
		return nil, nil, newError(typeIncorrectResponse, nil, "%s: HTTP status %d, expected 200; body %q", u, resp.StatusCode, clip(string(snippet)))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.maxBody+1))
	if err != nil {
		return nil, nil, netError(ctx, typeConnection, "reading response from "+u.String(), err)
	}
	if int64(len(body)) > v.maxBody {
		return nil, nil, newError(typeIncorrectResponse, nil, "%s: response larger than %d bytes", u, v.maxBody)
	}
	return body, nil, nil
}
